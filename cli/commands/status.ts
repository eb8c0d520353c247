/**
 * `agegender status <runId> [--follow]`: one run's state; with `--follow`, every change until it ends.
 *
 * Exit code: 0 when the run succeeded (or, without `--follow`, is still queued or running), 1 when it failed
 * or does not exist, 2 for wrong arguments. `--follow` waits for a run that does not exist yet (the trigger
 * creates it a moment after an upload), so `upload` and `status --follow` can be chained.
 * @module
 */
import { isTerminal, readPromotion, readRun, type RunStatus } from '../../core/runs.js'
import type { ObjectStore } from '../../core/store/object-store.js'
import { numberFlag, type Command } from '../command.js'
import { formatAgo, formatClock, formatNumber, formatPercent } from '../format.js'
import { println, UsageError, type Io } from '../io.js'
import { epochText } from './runs.js'

export const statusCommand: Command = {
  name: 'status',
  args: '<runId> [--follow]',
  summary: "show a run's state; --follow prints each change until it ends (exit 0 succeeded, 1 failed)",
  help: `  --follow, -f     keep polling and print state changes until the run succeeds or fails
  --interval S     seconds between polls (default 2)
  --timeout S      give up following after S seconds (exit 1)
  --appear S       give up when the run has not appeared after S seconds (default 120: the trigger skipped it)
  --json           the status document as JSON`,
  options: {
    follow: { type: 'boolean', short: 'f' },
    interval: { type: 'string' },
    timeout: { type: 'string' },
    appear: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(ctx) {
    const runId = ctx.positionals[0]
    if (runId === undefined || ctx.positionals.length > 1) throw new UsageError('status takes one run id')
    const { store } = ctx.s3()
    if (ctx.values['follow']) {
      const timeout = ctx.values['timeout'] === undefined ? Infinity : numberFlag(ctx, 'timeout', 1)
      return followRun(store, runId, ctx.io, {
        intervalSeconds: numberFlag(ctx, 'interval', 2),
        timeoutSeconds: timeout,
        appearSeconds: numberFlag(ctx, 'appear', 120),
      })
    }
    const status = await readRun(store, runId)
    if (!status) {
      println(ctx.io.stderr, `no run ${runId} in ${store.location} (list them with \`agegender runs\`)`)
      return 1
    }
    if (ctx.values['json']) println(ctx.io.stdout, JSON.stringify(status, null, 2))
    else println(ctx.io.stdout, describe(status, (await readPromotion(store))?.runId, ctx.io.now()))
    return status.state === 'failed' ? 1 : 0
  },
}

/** Consecutive failed reads after which `--follow` gives up. */
const MAX_READ_ERRORS = 5

export interface FollowOptions {
  readonly intervalSeconds: number
  readonly timeoutSeconds: number
  /**
   * How long to wait for the run to appear at all: the trigger queues a run within seconds of an upload, so a
   * run still missing by then was skipped (not a dataset key, the same bytes as before) or the trigger is not
   * running. @default 120
   */
  readonly appearSeconds?: number
}

/** Prints a line per change (state, epoch, note) until the run ends; returns the exit code. */
export async function followRun(store: ObjectStore, runId: string, io: Io, options: FollowOptions): Promise<number> {
  const deadline = Date.now() + options.timeoutSeconds * 1000
  let last = ''
  let waitingSaid = false
  let errors = 0
  // Seconds spent waiting between polls (counted, not clocked: a suspended laptop does not skip the wait).
  let waited = 0
  const appearSeconds = options.appearSeconds ?? 120
  for (;;) {
    let status: RunStatus | undefined
    try {
      status = await readRun(store, runId)
      errors = 0
    } catch (err) {
      // A blip (the server restarting, a network hiccup) should not end a long follow; a lasting error does.
      if (++errors >= MAX_READ_ERRORS) throw err
      println(
        io.stderr,
        `could not read the status (${err instanceof Error ? err.message : String(err)}); trying again`
      )
      await io.sleep(options.intervalSeconds * 1000)
      continue
    }
    const at = formatClock(io.now())
    if (!status) {
      if (!waitingSaid) println(io.stdout, `${at}  waiting for run ${runId} to be queued...`)
      waitingSaid = true
      if (waited >= appearSeconds) {
        println(
          io.stderr,
          `no run ${runId} after ${appearSeconds} s: the trigger did not start one. Is the local system running (npm start)? ` +
            "On AWS, see the trigger function's log; an upload of bytes already trained on starts no new run."
        )
        return 1
      }
    } else {
      const line = progressLine(status)
      if (line !== last) println(io.stdout, `${at}  ${line}`)
      last = line
      if (isTerminal(status.state)) {
        if (status.state === 'succeeded') println(io.stdout, `\nsee the figures: agegender metrics ${runId}`)
        return status.state === 'succeeded' ? 0 : 1
      }
    }
    if (Date.now() >= deadline) {
      println(
        io.stderr,
        `gave up after ${options.timeoutSeconds} s: run ${runId} is ${status?.state ?? 'not there yet'}`
      )
      return 1
    }
    await io.sleep(options.intervalSeconds * 1000)
    waited += options.intervalSeconds
  }
}

function progressLine(s: RunStatus): string {
  switch (s.state) {
    case 'queued':
      return `queued${s.reason ? `: ${s.reason}` : ''}`
    case 'running':
      return `running${s.epoch !== undefined ? ` (epoch ${epochText(s)})` : ''}${s.reason ? `: ${s.reason}` : ''}`
    case 'succeeded':
      return `succeeded: ${headline(s)}${s.promoted ? ', promoted' : s.reason ? `, not promoted (${s.reason})` : ''}`
    case 'failed':
      return `failed: ${s.reason ?? 'no reason recorded'}`
  }
}

function headline(s: RunStatus): string {
  const m = s.summary
  if (!m) return 'no test split'
  return `test age MAE ${formatNumber(m['testAgeMae'])}, gender accuracy ${formatPercent(m['testGenderAccuracy'] ?? NaN)}`
}

/** The non-follow view: one field per line. */
function describe(s: RunStatus, serving: string | undefined, now: Date): string {
  const rows: [string, string][] = [
    ['run', s.runId],
    ['state', s.state + (s.runId === serving ? ' (serving)' : '')],
    ...(s.reason ? ([['note', s.reason]] as [string, string][]) : []),
    [
      'dataset',
      `${s.dataset.key}${(s.dataset.versionId ?? s.dataset.etag) ? ` (version ${s.dataset.versionId ?? s.dataset.etag})` : ''}`,
    ],
    ...(s.epochs !== undefined || s.epoch !== undefined ? ([['epoch', epochText(s)]] as [string, string][]) : []),
    ...(s.summary ? ([['test', headline(s)]] as [string, string][]) : []),
    ...(s.state === 'succeeded' ? ([['promoted', s.promoted ? 'yes' : 'no']] as [string, string][]) : []),
    ...(s.jobId
      ? ([['job', `${s.jobId}${s.attempt && s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}`]] as [string, string][])
      : []),
    ['created', `${s.createdAt} (${formatAgo(s.createdAt, now)})`],
    ['updated', `${s.updatedAt} (${formatAgo(s.updatedAt, now)})`],
  ]
  return rows.map(([k, v]) => `${k.padEnd(9)}${v}`).join('\n')
}

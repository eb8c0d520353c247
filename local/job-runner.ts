/**
 * The local stand-in for AWS Batch: a `JobSubmitter` that runs each training job as a child process,
 * `tsx trainer/bin/job.ts` (as `node --import tsx`, so signals reach the job itself, not a wrapper), with the
 * Batch job's environment contract: `runEnvironment(run)` + the training settings + the S3 endpoint.
 *
 * - One job at a time, in submission order: training uses every core there is.
 * - A job starts only once its `queued` status exists: `submitRun` writes it after `submit()` returns, and a
 *   job starting first would see its `running` overwritten by `queued`.
 * - Child output is printed line by line, prefixed with the run id, and streamed to `runs/<runId>/log.txt`
 *   (what CloudWatch Logs is for a Batch job) while the job runs: rewritten every `logFlushMs` when there is
 *   news, after the earlier attempts' output, so a kill -9 of the runner loses at most that much.
 * - A job that dies without recording an outcome (crash, OOM, bad environment) gets status `failed` with
 *   the exit code and its last output line, so no run stays `running`.
 * - `stop()` sends SIGTERM (the job checkpoints after its current step, records `interrupted: true` and exits), kills
 *   it after a grace period, and then marks the run `queued` again: it was interrupted, not wrong, and the
 *   next start resumes it from its checkpoint. Runs still waiting in the queue simply stay `queued`.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { isTerminal, readRun, runKeys, type RunStatus } from '../core/runs.js'
import { putJson, type ObjectStore } from '../core/store/object-store.js'
import { runEnvironment, type JobSubmitter, type RunRequest } from '../functions/trigger/index.js'

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
const JOB_ENTRY = fileURLToPath(new URL('../trainer/bin/job.ts', import.meta.url))
/** Keep at most this much of a job's output in log.txt (the tail: where the failure is). */
const LOG_LIMIT_BYTES = 2 * 1024 * 1024

/**
 * Variables the child must not inherit from the shell that ran `npm start`: they belong to the job contract
 * (a stray `STORE_URI` or `TRAIN_EPOCHS` would silently change the run) or would point the SDK elsewhere.
 */
const CONTRACT_VARIABLE = /^(STORE_|DATASET_|RUN_ID$|TRAIN_|QUALITY_GATE_|AGEGENDER_|AWS_|S3_FORCE_PATH_STYLE$)/

export interface JobRunnerOptions {
  /** The store the runs live in, for reading and repairing statuses. */
  readonly store: ObjectStore
  /** Added to every job's environment: S3 endpoint and credentials, training settings. */
  readonly env: Readonly<Record<string, string>>
  /** The job command. @default - `[node, --import, tsx, trainer/bin/job.ts]` */
  readonly command?: readonly [string, ...string[]]
  /** @default - the repository root */
  readonly cwd?: string
  /** Where job output (prefixed) and runner messages go. @default console.log */
  readonly log?: (line: string) => void
  /** How long a job gets to stop after SIGTERM before SIGKILL. @default 15000 */
  readonly stopGraceMs?: number
  /** How long a job waits for its `queued` status before starting anyway. @default 30000 */
  readonly statusWaitMs?: number
  /** How often new job output is written to `log.txt` while the job runs. @default 2000 */
  readonly logFlushMs?: number
  /**
   * Attempts a run gets when its job is killed by SIGKILL from outside (the local stand-in for a Spot reclaim,
   * which the Batch retry strategy retries): the next attempt resumes from the last epoch checkpoint. @default 3
   */
  readonly maxAttempts?: number
  /** How long the runner keeps trying to record a job's outcome while S3 is unreachable. @default 60000 */
  readonly statusRetryMs?: number
}

export interface SubmitOptions {
  /** Passed as `AWS_BATCH_JOB_ATTEMPT`, as Batch does for a retried job. @default 1 */
  readonly attempt?: number
}

export interface JobRunner extends JobSubmitter {
  submit(run: RunRequest, options?: SubmitOptions): Promise<string>
  /** Run ids waiting and running, in order (the running one first). */
  readonly pending: readonly string[]
  /** Resolves when no job is running and none is waiting. */
  idle(): Promise<void>
  /** Stops the running job (see the module header) and drops the queue; submitting afterwards fails. */
  stop(): Promise<void>
  /** The job running now, with its process id. */
  readonly running:
    | { readonly runId: string; readonly jobId: string; readonly attempt: number; readonly pid: number | undefined }
    | undefined
}

interface Job {
  readonly run: RunRequest
  readonly jobId: string
  readonly attempt: number
}

/**
 * @example
 * const runner = createJobRunner({ store, env: { ...s3.env, TRAIN_EPOCHS: '3' } })
 * await triggerRuns(records, { store, submitter: runner })
 */
export function createJobRunner(options: JobRunnerOptions): JobRunner {
  const log = options.log ?? ((line: string) => console.log(line))
  const stopGraceMs = options.stopGraceMs ?? 15_000
  const statusWaitMs = options.statusWaitMs ?? 30_000
  const command = options.command ?? [process.execPath, '--import', 'tsx', JOB_ENTRY]
  const queue: Job[] = []
  let current: { job: Job; child: ChildProcess; exited: Promise<void>; stopping: boolean } | undefined
  let stopped = false
  let sequence = 0
  let pump: Promise<void> | undefined
  let idleWaiters: (() => void)[] = []

  const baseEnv = (): Record<string, string> => {
    const inherited = Object.entries(process.env).filter(
      (kv): kv is [string, string] => kv[1] !== undefined && !CONTRACT_VARIABLE.test(kv[0])
    )
    return { ...Object.fromEntries(inherited), ...options.env }
  }

  const notifyIdle = () => {
    if (current !== undefined || queue.length > 0) return
    const waiters = idleWaiters
    idleWaiters = []
    for (const w of waiters) w()
  }

  const startPump = () => {
    pump ??= (async () => {
      try {
        while (!stopped && queue.length > 0) {
          const job = queue.shift()!
          await runOne(job).catch((err: unknown) => log(`[runner] ${job.run.runId}: ${errorText(err)}`))
        }
      } finally {
        pump = undefined
        notifyIdle()
      }
    })()
  }

  async function runOne(job: Job): Promise<void> {
    const { runId } = job.run
    const status = await waitForQueuedStatus(job)
    if (status && isTerminal(status.state)) {
      log(`[runner] ${runId}: not started, the run is already ${status.state}`)
      return
    }
    if (stopped) return
    const env = {
      ...baseEnv(),
      ...runEnvironment(job.run),
      ...(job.attempt > 1 ? { AWS_BATCH_JOB_ATTEMPT: String(job.attempt) } : {}),
      // as Batch does: the job records which attempt's job it is
      AWS_BATCH_JOB_ID: job.jobId,
    }
    log(`[runner] ${runId}: starting (job ${job.jobId}${job.attempt > 1 ? `, attempt ${job.attempt}, resuming` : ''})`)
    const [file, ...args] = command
    // Its own process group: a Ctrl-C in the terminal reaches only `npm start`, which then stops the job
    // in order (SIGTERM, grace, status) instead of the job racing it.
    // An IPC channel the job only watches: if this process dies (kill -9), the job sees it close and exits at
    // once, leaving its run `running` for the next start to resume instead of training on unattended.
    const child = spawn(file, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    })
    const output = collectOutput(child, runId, log, { store: options.store, job, flushMs: options.logFlushMs ?? 2000 })
    // If this process exits abruptly, do not leave a training job running without its S3 server.
    const killOnExit = () => child.kill('SIGKILL')
    process.once('exit', killOnExit)
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((done) => {
      child.once('error', (error) => done({ code: null, signal: null, error }))
      child.once('close', (code, signal) => done({ code, signal }))
    })
    current = { job, child, exited: exited.then(() => undefined), stopping: false }
    const result = await exited
    process.removeListener('exit', killOnExit)
    const stopping = current.stopping
    current = undefined
    await output.save()
    const how = result.error ? `could not start: ${result.error.message}` : describeExit(result.code, result.signal)
    log(`[runner] ${runId}: job ${how}`)
    const maxAttempts = options.maxAttempts ?? 3
    if (!stopping && !stopped && result.signal === 'SIGKILL' && job.attempt < maxAttempts) {
      // killed from outside mid-run: resume from the checkpoint, as Batch retries a reclaimed Spot instance
      const next: Job = { run: job.run, jobId: `local-${process.pid}-${++sequence}`, attempt: job.attempt + 1 }
      log(`[runner] ${runId}: retrying as attempt ${next.attempt} (job ${next.jobId}), resuming from its checkpoint`)
      await retryWhileUnreachable(() => requeue(next), runId)
      queue.unshift(next)
      return
    }
    await retryWhileUnreachable(
      () => settleStatus(job, { stopping, how, lastLine: output.lastLine(), ok: result.code === 0 }),
      runId
    )
  }

  /** Marks a run queued again for its next attempt (its job starts once this status names it). */
  async function requeue(job: Job): Promise<void> {
    const status = await readRun(options.store, job.run.runId)
    const now = new Date().toISOString()
    await putJson(options.store, runKeys(job.run.runId).status, {
      ...baseStatus(job, status, now),
      state: 'queued',
      reason: `attempt ${job.attempt - 1} was killed (SIGKILL); attempt ${job.attempt} resumes from its checkpoint`,
      updatedAt: now,
    } satisfies RunStatus)
  }

  /** Runs `write`, again every second while the store is unreachable (S3 restarting), up to `statusRetryMs`. */
  async function retryWhileUnreachable(write: () => Promise<void>, runId: string): Promise<void> {
    const deadline = Date.now() + (options.statusRetryMs ?? 60_000)
    for (let said = false; ; ) {
      try {
        return await write()
      } catch (err) {
        if (Date.now() >= deadline || stopped) throw err
        if (!said) log(`[runner] ${runId}: cannot record the outcome yet (${errorText(err)}); retrying`)
        said = true
        await sleep(1000)
      }
    }
  }

  /**
   * Waits until `submitRun` has recorded the run (see the module header): a status naming this job, or any
   * unfinished one (a run queued again by the restart recovery). A `failed` status from an earlier submission
   * that never started is what `submitRun` is about to replace, so it is waited out too.
   */
  async function waitForQueuedStatus(job: Job): Promise<RunStatus | undefined> {
    const deadline = Date.now() + statusWaitMs
    for (;;) {
      const status = await readRun(options.store, job.run.runId).catch(() => undefined)
      const recorded = status !== undefined && (status.jobId === job.jobId || !isTerminal(status.state))
      if (recorded || Date.now() >= deadline || stopped) return status
      await sleep(100)
    }
  }

  /** After the job exited: make sure its status says how it ended. */
  async function settleStatus(
    job: Job,
    exit: { stopping: boolean; how: string; lastLine: string | undefined; ok: boolean }
  ) {
    const { runId } = job.run
    const status = await readRun(options.store, runId).catch(() => undefined)
    const now = new Date().toISOString()
    if (exit.stopping) {
      // Interrupted by our own shutdown: whatever the job managed to write, it is to be resumed.
      const interrupted = !status || !isTerminal(status.state) || status.interrupted === true
      if (!interrupted) return
      await putJson(options.store, runKeys(runId).status, {
        ...baseStatus(job, status, now),
        state: 'queued',
        reason: 'interrupted: the local system stopped; it resumes from its checkpoint on the next start',
        updatedAt: now,
      } satisfies RunStatus)
      return
    }
    if (status && isTerminal(status.state)) return
    const why = exit.ok ? 'job exited without recording an outcome' : `training job ${exit.how}`
    await putJson(options.store, runKeys(runId).status, {
      ...baseStatus(job, status, now),
      state: 'failed',
      reason: exit.lastLine ? `${why}: ${exit.lastLine}` : why,
      updatedAt: now,
    } satisfies RunStatus)
  }

  return {
    async submit(run: RunRequest, submitOptions: SubmitOptions = {}): Promise<string> {
      if (stopped) throw new Error('the local job runner is stopped')
      const already = current?.job.run.runId === run.runId ? current.job : queue.find((j) => j.run.runId === run.runId)
      if (already) return already.jobId
      const jobId = `local-${process.pid}-${++sequence}`
      queue.push({ run, jobId, attempt: submitOptions.attempt ?? 1 })
      // Deferred: the caller writes the queued status after this returns (see waitForQueuedStatus).
      setImmediate(startPump)
      return jobId
    },
    get running() {
      return current
        ? {
            runId: current.job.run.runId,
            jobId: current.job.jobId,
            attempt: current.job.attempt,
            pid: current.child.pid,
          }
        : undefined
    },
    get pending() {
      return [...(current ? [current.job.run.runId] : []), ...queue.map((j) => j.run.runId)]
    },
    idle() {
      if (current === undefined && queue.length === 0 && pump === undefined) return Promise.resolve()
      return new Promise<void>((done) => idleWaiters.push(done))
    },
    async stop() {
      stopped = true
      if (queue.length > 0) log(`[runner] leaving ${queue.length} queued run(s) for the next start`)
      queue.length = 0
      const running = current
      if (running) {
        running.stopping = true
        log(`[runner] ${running.job.run.runId}: stopping the job (SIGTERM, then SIGKILL after ${stopGraceMs / 1000} s)`)
        running.child.kill('SIGTERM')
        const killed = await Promise.race([running.exited.then(() => false), sleep(stopGraceMs).then(() => true)])
        if (killed) running.child.kill('SIGKILL')
      }
      await pump
      notifyIdle()
    },
  }
}

/** The fields a repaired status keeps, from what the run wrote or else from the request. */
function baseStatus(job: Job, status: RunStatus | undefined, now: string): Omit<RunStatus, 'state' | 'updatedAt'> {
  const { run } = job
  return {
    ...(status ?? {
      runId: run.runId,
      dataset: {
        key: run.datasetKey,
        ...(run.versionId ? { versionId: run.versionId } : {}),
        ...(run.etag ? { etag: run.etag } : {}),
      },
      createdAt: now,
    }),
    // this attempt's job: the one whose ending is being recorded
    jobId: job.jobId,
    attempt: job.attempt,
  }
}

interface CollectedOutput {
  lastLine(): string | undefined
  /** Waits for the output to end and writes the whole of it. */
  save(): Promise<void>
}

/**
 * Prints the child's lines with a prefix and streams them to log.txt, after the earlier attempts' output:
 * a write every `flushMs` while there is news (S3 has no append: the object is rewritten), and one at the end.
 */
function collectOutput(
  child: ChildProcess,
  runId: string,
  log: (line: string) => void,
  target: { store: ObjectStore; job: Job; flushMs: number }
): CollectedOutput {
  const lines: string[] = []
  let bytes = 0
  let last: string | undefined
  let dirty = false
  const closed: Promise<void>[] = []
  const key = runKeys(runId).log
  // Earlier attempts' output, read once: a resumed run keeps its whole history.
  const before = target.store.get(key).then(
    (b) => (b ? Buffer.from(b).toString('utf8') : ''),
    () => ''
  )
  const header = `--- attempt ${target.job.attempt} (${target.job.jobId}) ---\n`
  let writing = Promise.resolve()
  let warned = false
  const flush = () => {
    if (!dirty) return writing
    dirty = false
    const body = `${lines.join('\n')}\n`
    writing = writing.then(async () => {
      await target.store
        .put(key, (await before) + header + body, { contentType: 'text/plain; charset=utf-8' })
        .catch((err: unknown) => {
          if (!warned) log(`[runner] ${runId}: could not write log.txt: ${errorText(err)}`)
          warned = true
        })
    })
    return writing
  }
  const timer = setInterval(() => void flush(), target.flushMs)
  timer.unref()
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue
    const reader = createInterface({ input: stream, crlfDelay: Infinity })
    reader.on('line', (line) => {
      log(`[${runId}] ${line}`)
      if (line.trim() !== '') last = line.trim()
      lines.push(line)
      dirty = true
      bytes += line.length + 1
      while (bytes > LOG_LIMIT_BYTES && lines.length > 1) bytes -= lines.shift()!.length + 1
    })
    closed.push(new Promise((done) => reader.once('close', () => done())))
  }
  return {
    lastLine: () => last,
    async save() {
      await Promise.all(closed)
      clearInterval(timer)
      dirty = true
      await flush()
    },
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`
  return code === 0 ? 'exited 0' : `exited with code ${code}`
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err))
const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

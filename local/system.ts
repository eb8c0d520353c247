/**
 * The whole pipeline on one machine, in one process tree, as AWS runs it in the cloud:
 *
 * ```
 * S3 bucket            → embedded s3rver on 127.0.0.1, objects under <dataDir>/s3 (survive restarts)
 * S3 → Lambda trigger  → object-created events into the trigger's own handler (createHandler: same parsing,
 *                        planning, idempotent submit and status.json as the Lambda)
 * AWS Batch            → the local job runner: `tsx trainer/bin/job.ts` child processes, one at a time
 * Lambda predict       → startPredictServer on 127.0.0.1, reading the promoted model from the same bucket
 * ```
 *
 * On start, runs an earlier session left `queued` or `running` are queued again (see `recovery.ts`). While
 * running, `<dataDir>/endpoints.json` and `<dataDir>/env.sh` tell the CLI and the shell where things are.
 * @module
 */
import { S3Client } from '@aws-sdk/client-s3'
import type { S3EventRecord } from 'aws-lambda'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { S3Store } from '../core/store/s3-store.js'
import { DATASET_PREFIX } from '../core/runs.js'
import { createHandler, type RecordResult } from '../functions/trigger/index.js'
import { loadFaceDetector } from '../core/face-detector.js'
import { startPredictServer } from '../functions/predict/server.js'
import { parseLocalConfig, trainEnvironment, type LocalSystemConfigInput } from './config.js'
import { newS3Credentials, startEmbeddedS3 } from './embedded-s3.js'
import { loadOrCreateCredentials } from './s3-auth.js'
import { createJobRunner, type JobRunner } from './job-runner.js'
import { recoverRuns } from './recovery.js'

export interface LocalSystemOptions extends LocalSystemConfigInput {
  /** Runner messages, trigger decisions and job output (prefixed). @default console.log */
  readonly log?: (line: string) => void
}

export interface LocalSystem {
  /** `http://127.0.0.1:<port>` of the embedded S3 server. */
  readonly s3Endpoint: string
  /** `http://127.0.0.1:<port>` of the predict API. */
  readonly predictUrl: string
  readonly bucket: string
  /** The bucket, through the same S3 code the jobs use. */
  readonly store: S3Store
  /** Absolute data folder. */
  readonly dataDir: string
  /** Variables that point the CLI, the aws CLI or the SDK at the embedded S3 server. */
  readonly env: Readonly<Record<string, string>>
  /** The training settings every job gets. */
  readonly trainEnv: Readonly<Record<string, string>>
  /** The job queue, for tests and status lines. */
  readonly runner: JobRunner
  /** What the restart recovery did. */
  readonly recovered: { readonly resumed: readonly string[]; readonly failed: readonly string[] }
  /** Stops the job (its run stays resumable), then the predict server, then S3. Safe to call twice. */
  stop(): Promise<void>
}

/** What `endpoints.json` holds: read by the CLI for its defaults. */
export interface LocalEndpoints {
  readonly s3Endpoint: string
  readonly predictUrl: string
  readonly bucket: string
  readonly pid: number
  readonly startedAt: string
}

export const ENDPOINTS_FILE = 'endpoints.json'
export const ENV_FILE = 'env.sh'

/**
 * @example
 * const system = await startLocalSystem({ dataDir: '.local', trainEnv: { TRAIN_EPOCHS: '3' } })
 * console.log(system.s3Endpoint, system.predictUrl)
 * await system.stop()
 */
export async function startLocalSystem(options: LocalSystemOptions = {}): Promise<LocalSystem> {
  const config = parseLocalConfig(options)
  const log = options.log ?? ((line: string) => console.log(line))
  const trainEnv = trainEnvironment(config.trainEnv)
  await mkdir(config.dataDir, { recursive: true })
  await refuseIfRunning(config.dataDir)
  // s3rver reports a taken port as an uncaught 'error' event, not a rejection: look first.
  await ensurePortFree(config.s3Port, 'S3')

  // Events can arrive as soon as S3 listens; they wait here until the handler is wired.
  let handle: ((record: S3EventRecord) => void) | undefined
  const early: S3EventRecord[] = []
  const s3 = await startEmbeddedS3({
    directory: join(config.dataDir, 's3'),
    bucket: config.bucket,
    port: config.s3Port,
    // Kept across restarts, so a shell that sourced env.sh once stays valid.
    credentials: await loadOrCreateCredentials(config.dataDir, newS3Credentials),
    onObjectCreated: (record) => (handle ? handle(record) : void early.push(record)),
  })
  const stack: (() => Promise<void>)[] = [() => s3.stop()]
  const unwind = async () => {
    for (const close of stack.reverse())
      await close().catch((err: unknown) => log(`[local] while stopping: ${errorText(err)}`))
  }
  try {
    const client = new S3Client(s3.clientConfig)
    stack.push(async () => client.destroy())
    const store = new S3Store({ bucket: config.bucket, client })
    const runner = createJobRunner({
      store,
      env: { ...s3.env, ...trainEnv },
      log,
      stopGraceMs: config.stopGraceSeconds * 1000,
    })
    stack.push(() => runner.stop())

    const recovery = await recoverRuns({ store, bucket: config.bucket, datasetVersion: (key) => store.head(key) })
    for (const f of recovery.failed) log(`[local] ${f.runId}: ${f.reason}`)
    for (const r of recovery.resume) {
      log(
        `[local] ${r.run.runId}: ${r.epoch === undefined ? 'queued again' : `resuming after epoch ${r.epoch}`} (left unfinished last time)`
      )
      await runner.submit(r.run, { attempt: r.attempt })
    }

    // The Lambda's handler, with the local runner in place of Batch; one event at a time, in arrival order.
    // Its JSON log lines are for CloudWatch; here its returned decisions are told in words.
    const handler = createHandler({ store, submitter: runner, bucket: config.bucket, log: () => {} })
    let chain = Promise.resolve()
    let accepting = true
    handle = (record) => {
      if (!accepting) return
      chain = chain.then(() =>
        handler({ Records: [record] }).then(
          (results) => {
            for (const line of results.map(describeDecision)) if (line) log(line)
          },
          (err: unknown) => log(`[trigger] ${errorText(err)}`)
        )
      )
    }
    stack.push(async () => {
      accepting = false
      await chain
    })
    for (const record of early.splice(0)) handle(record)

    const predict = await startPredictServer({
      store,
      port: config.predictPort,
      hostname: '127.0.0.1',
      refreshSeconds: config.refreshSeconds,
      detector: () => loadFaceDetector(),
    })
    stack.push(() => predict.close())

    const endpoints: LocalEndpoints = {
      s3Endpoint: s3.endpoint,
      predictUrl: predict.url,
      bucket: config.bucket,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    }
    const env = { ...s3.env, AGEGENDER_BUCKET: config.bucket, AGEGENDER_PREDICT_URL: predict.url }
    await writeFile(join(config.dataDir, ENDPOINTS_FILE), `${JSON.stringify(endpoints, null, 2)}\n`)
    await writeFile(join(config.dataDir, ENV_FILE), envScript(env), { mode: 0o600 })
    stack.push(async () => {
      // Gone with the servers: a CLI must not find a dead port as the default.
      await rm(join(config.dataDir, ENDPOINTS_FILE), { force: true })
      await rm(join(config.dataDir, ENV_FILE), { force: true })
    })

    let stopping: Promise<void> | undefined
    return {
      s3Endpoint: s3.endpoint,
      predictUrl: predict.url,
      bucket: config.bucket,
      store,
      dataDir: config.dataDir,
      env,
      trainEnv,
      runner,
      recovered: { resumed: recovery.resume.map((r) => r.run.runId), failed: recovery.failed.map((f) => f.runId) },
      stop: () => (stopping ??= unwind()),
    }
  } catch (err) {
    await unwind()
    throw err
  }
}

/**
 * Two systems on one data folder would run two S3 servers over the same files and resume the same runs twice:
 * a live `endpoints.json` owner is refused (a stale one, from a killed process, is not).
 */
async function refuseIfRunning(dataDir: string): Promise<void> {
  let owner: Partial<LocalEndpoints>
  try {
    owner = JSON.parse(await readFile(join(dataDir, ENDPOINTS_FILE), 'utf8')) as Partial<LocalEndpoints>
  } catch {
    return
  }
  if (typeof owner.pid !== 'number' || owner.pid === process.pid || !isAlive(owner.pid)) return
  throw new Error(
    `another local system (pid ${owner.pid}, S3 ${owner.s3Endpoint ?? '?'}) is using ${dataDir}: stop it first, or use another --data-dir`
  )
}

async function ensurePortFree(port: number, what: string): Promise<void> {
  if (port === 0) return
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) => {
      const taken = new Error(
        `${what} port ${port} on 127.0.0.1 is taken (${err.code ?? err.message})`
      ) as NodeJS.ErrnoException
      taken.code = err.code
      reject(taken)
    })
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()))
  })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** One trigger decision in words; skipped writes to non-dataset keys (statuses, models) are not news. */
export function describeDecision(r: RecordResult): string | undefined {
  switch (r.result) {
    case 'submitted':
      return `[trigger] ${r.key}: run ${r.runId} queued`
    case 'failed':
      return `[trigger] ${r.key}: run ${r.runId} could not be queued: ${r.error.message}`
    case 'skipped':
      return r.key.startsWith(DATASET_PREFIX) ? `[trigger] ${r.key}: skipped (${r.reason})` : undefined
  }
}

function envScript(env: Readonly<Record<string, string>>): string {
  const lines = Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`)
  return `# Points the agegender CLI, the aws CLI and the AWS SDK at the local system. Usage: source ${ENV_FILE}\n${lines.join('\n')}\n`
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err))

/**
 * `npm start`: the whole pipeline on this machine (see `system.ts`), until Ctrl-C.
 *
 * Settings: flags over environment over laptop defaults. `--help` lists them. A first Ctrl-C stops cleanly (the
 * running job is interrupted and resumes on the next start); a second one exits at once.
 * @module
 */
import { relative } from 'node:path'
import { parseArgs } from 'node:util'
import { DEFAULT_DATA_DIR, DEFAULT_PREDICT_PORT, DEFAULT_S3_PORT, trainEnvFrom, type TrainEnv } from './config.js'
import { ENV_FILE, startLocalSystem, type LocalSystem } from './system.js'
import { TRAIN_FLAGS, trainFlagUsage } from './train-flags.js'

const USAGE = `Usage: npm start -- [options]

Runs the S3 bucket, the upload trigger, the training job runner and the predict API on this machine.

Options (environment variable in brackets):
  --data-dir DIR        where the bucket's objects live [AGEGENDER_DATA_DIR] (default ${DEFAULT_DATA_DIR})
  --s3-port N           embedded S3 port, 0 = any free one [AGEGENDER_S3_PORT] (default ${DEFAULT_S3_PORT})
  --predict-port N      predict API port [AGEGENDER_PREDICT_PORT] (default ${DEFAULT_PREDICT_PORT})
${trainFlagUsage()}
  --refresh-seconds N   how often the predict API looks for a new model [AGEGENDER_REFRESH_SECONDS] (default 5)
  --stop-grace N        seconds a job gets to stop on Ctrl-C before it is killed [AGEGENDER_STOP_GRACE] (default 15)
  -h, --help`

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      's3-port': { type: 'string' },
      'predict-port': { type: 'string' },
      'refresh-seconds': { type: 'string' },
      'stop-grace': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(Object.keys(TRAIN_FLAGS).map((f) => [f, { type: 'string' as const }])),
    },
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const env = process.env
  const flag = (name: string) => (values as Record<string, unknown>)[name] as string | undefined
  const trainEnv: TrainEnv = { ...trainEnvFrom(env) }
  for (const [name, { variable }] of Object.entries(TRAIN_FLAGS)) {
    const value = flag(name)
    if (value !== undefined) trainEnv[variable] = value
  }
  const pick = (name: string, variable: string) => flag(name) ?? nonEmpty(env[variable])
  const system = await startLocalSystem({
    ...optional('dataDir', pick('data-dir', 'AGEGENDER_DATA_DIR')),
    ...optional('s3Port', pick('s3-port', 'AGEGENDER_S3_PORT')),
    ...optional('predictPort', pick('predict-port', 'AGEGENDER_PREDICT_PORT')),
    ...optional('refreshSeconds', pick('refresh-seconds', 'AGEGENDER_REFRESH_SECONDS')),
    ...optional('stopGraceSeconds', pick('stop-grace', 'AGEGENDER_STOP_GRACE')),
    trainEnv,
  })
  console.log(banner(system))

  return new Promise<number>((done) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        console.log(`\n${signal} again: exiting now (an interrupted run resumes on the next start)`)
        process.exit(130)
      }
      stopping = true
      console.log(`\n${signal}: stopping (again to force)...`)
      system.stop().then(
        () => {
          console.log('stopped')
          done(0)
        },
        (err: unknown) => {
          console.error(err)
          done(1)
        }
      )
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

function banner(s: LocalSystem): string {
  const envFile = relative(process.cwd(), `${s.dataDir}/${ENV_FILE}`) || ENV_FILE
  const settings = Object.entries(s.trainEnv)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
  const recovered = [
    ...(s.recovered.resumed.length
      ? [`  resuming ${s.recovered.resumed.length} unfinished run(s): ${s.recovered.resumed.join(', ')}`]
      : []),
    ...(s.recovered.failed.length ? [`  marked failed (dataset gone): ${s.recovered.failed.join(', ')}`] : []),
  ]
  return `
agegender local system is up
  S3 endpoint   ${s.s3Endpoint}   bucket ${s.bucket}   data in ${s.dataDir}
  predict API   ${s.predictUrl}   (POST /predict, GET /model, GET /healthz)
  training      ${settings}
${recovered.join('\n')}${recovered.length ? '\n' : ''}
Point the CLI (or aws CLI / SDK) at it, in another terminal:
  source ${envFile}
${Object.entries(s.env)
  .map(
    ([k, v]) =>
      `    # ${k}=${k === 'AWS_SECRET_ACCESS_KEY' ? '(in the file: every request must be signed with it)' : v}`
  )
  .join('\n')}

Then:
  npx agegender upload ../shared/data/utkface/UTKFace      # a folder (packed on the fly) or .zip/.tar/.tar.gz
  npx agegender status <runId> --follow                     # the run id is printed by upload
  npx agegender runs
  npx agegender metrics <runId>
  npx agegender predict face.jpg                            # served by ${s.predictUrl}
  aws s3 ls s3://${s.bucket}/runs/ --recursive                # with the aws CLI, same env

Ctrl-C to stop (a running job is interrupted and resumes on the next start).
`
}

const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim())
const optional = (name: string, value: string | undefined) => (value === undefined ? {} : { [name]: value })

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`npm start: ${err instanceof Error ? err.message : String(err)}`)
    if ((err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') {
      console.error('a port is taken: another `npm start` running? Choose others with --s3-port / --predict-port')
    }
    process.exit(1)
  }
)

/**
 * The local system's settings, parsed once with zod at the edge (`start.ts` flags over environment over
 * laptop-sized defaults), and the training environment handed to every job.
 *
 * Training settings travel as the job's own environment variables (`TRAIN_*`, `QUALITY_GATE_MAX_AGE_MAE`,
 * `AGEGENDER_BACKEND`: the Batch job definition's contract), and are checked here through the trainer's own
 * parser, so a typo fails `npm start` instead of every run.
 * @module
 */
import { resolve } from 'node:path'
import { z } from 'zod'
import { parseTrainConfig, TRAIN_ENV_VARIABLES } from '../trainer/config.js'
import { parseJobEnv } from '../trainer/job-run.js'
import { parseSettings } from '../core/zod-issues.js'

export const DEFAULT_BUCKET = 'agegender'
/** s3rver's customary port; LocalStack uses 4566, so both can run side by side. */
export const DEFAULT_S3_PORT = 4568
export const DEFAULT_PREDICT_PORT = 8787
export const DEFAULT_DATA_DIR = '.local'

/**
 * The recipe of docs/results (64 px, DLDL-v2 age head, weight average, gender loss weight 3, identical training images
 * merged, two data-parallel replicas on our GEMM where Node has relaxed SIMD: the trainer's defaults), sized so a
 * UTKFace run on a 2-core CPU ends within 2 hours: 11 epochs took 78 min, start to report, on Node 22 with two
 * replicas (docs/results/utkface-11epoch-64px-defaults.*); override with env or flags.
 */
export const LOCAL_TRAIN_DEFAULTS: Readonly<Record<string, string>> = {
  TRAIN_EPOCHS: '11',
  TRAIN_IMAGE_SIZE: '64',
  AGEGENDER_BACKEND: 'auto',
}

/** The job variables a local run may set; everything else in the job's environment is the runner's business. */
export const TRAIN_ENV_NAMES = [
  ...TRAIN_ENV_VARIABLES,
  'QUALITY_GATE_MAX_AGE_MAE',
  'AGEGENDER_BACKEND',
  'AGEGENDER_THREADS',
  'DATASET_MAX_BYTES',
  'DATASET_MAX_ENTRIES',
] as const
export type TrainEnvName = (typeof TRAIN_ENV_NAMES)[number]
export type TrainEnv = Partial<Record<TrainEnvName, string>>

const port = z.coerce.number().int().min(0).max(65_535)

export const LocalSystemConfig = z.object({
  /** Holds `s3/` (the bucket's objects) and `endpoints.json` / `env.sh` while running. */
  dataDir: z
    .string()
    .min(1)
    .default(DEFAULT_DATA_DIR)
    .transform((d) => resolve(d)),
  bucket: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'bucket names are 3-63 lower-case letters, digits, . and -')
    .default(DEFAULT_BUCKET),
  /** 0 picks a free port. */
  s3Port: port.default(DEFAULT_S3_PORT),
  predictPort: port.default(DEFAULT_PREDICT_PORT),
  /** How often the predict server looks for a newly promoted model. */
  refreshSeconds: z.coerce.number().positive().default(5),
  /** How long a job may take to stop after SIGTERM before it is killed. */
  stopGraceSeconds: z.coerce.number().min(0).default(15),
  trainEnv: z.partialRecord(z.enum(TRAIN_ENV_NAMES), z.string()).default({}),
})
export type LocalSystemConfig = z.infer<typeof LocalSystemConfig>
export type LocalSystemConfigInput = z.input<typeof LocalSystemConfig>

/** Parses the settings; throws one error naming every bad field. */
export function parseLocalConfig(input: LocalSystemConfigInput): LocalSystemConfig {
  return parseSettings(LocalSystemConfig, input, 'local settings', 'config')
}

/**
 * The training variables every local job gets: the defaults, then `overrides` (empty values dropped),
 * validated the way the job will read them.
 * @example
 * trainEnvironment({ TRAIN_EPOCHS: '5' }) // { TRAIN_EPOCHS: '5', TRAIN_IMAGE_SIZE: '64', AGEGENDER_BACKEND: 'auto' }
 */
export function trainEnvironment(overrides: TrainEnv = {}): Record<string, string> {
  const merged: Record<string, string> = { ...LOCAL_TRAIN_DEFAULTS }
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined && value !== '') merged[name] = value
  // The same parsers the job runs, with placeholders for the per-run variables.
  const job = parseJobEnv({ ...merged, STORE_BUCKET: 'check', DATASET_KEY: 'datasets/check.zip', RUN_ID: 'check' })
  parseTrainConfig(job.settings)
  return merged
}

/** The `TRAIN_*` (and gate, backend) variables set in `env`, for `npm start` to pass on. */
export function trainEnvFrom(env: Readonly<Record<string, string | undefined>>): TrainEnv {
  const out: TrainEnv = {}
  for (const name of TRAIN_ENV_NAMES) {
    const value = env[name]
    if (value !== undefined && value.trim() !== '') out[name] = value.trim()
  }
  return out
}

/**
 * `npm start`'s training flags: one per job variable of the trainer's `TRAIN_ENV` table (the setting's name in
 * kebab case: `batchSize` → `--batch-size` → `TRAIN_BATCH_SIZE`), plus the quality gate and the backend. The help
 * table is keyed by the same settings, so a new job variable without its flag and help line does not compile.
 * @module
 */
import { BACKEND_CHOICES } from '../core/engine/index.js'
import { TRAIN_ENV } from '../trainer/config.js'
import { DEFAULT_QUALITY_GATE_MAX_AGE_MAE } from '../trainer/job-run.js'
import { LOCAL_TRAIN_DEFAULTS, type TrainEnvName } from './config.js'

type Help = readonly [argument: string, help: string, byDefault?: string]

const SETTING_HELP: Record<keyof typeof TRAIN_ENV, Help> = {
  epochs: ['N', '', LOCAL_TRAIN_DEFAULTS['TRAIN_EPOCHS']],
  imageSize: ['N', 'a multiple of 32', LOCAL_TRAIN_DEFAULTS['TRAIN_IMAGE_SIZE']],
  batchSize: ['N', ''],
  learningRate: ['X', 'peak Adam learning rate'],
  width: ['N', 'first-stage channels, 64 = ResNet18'],
  maxImages: ['N', 'train on at most N images, for quick runs'],
  seed: ['N', ''],
  workers: ['N|auto', 'data-parallel replicas', 'auto: one per core on our GEMM (Node 22+), else 1'],
  ageLoss: ['L', 'l1 | dldl | mean-variance'],
  progressiveFrom: ['S', 'progressive resizing: early epochs from S px up to the image size, 0 = off'],
  ema: ['D', 'weight-average decay for validation and export, 0 = off'],
  genderSmoothing: ['E', 'gender label smoothing'],
  pretrained: ['SRC', 'torchvision ResNet18 model.safetensors: path, s3://bucket/key or https:// URL'],
  pretrainedSha256: ['HEX', 'sha256 the pretrained file must have'],
}

const OTHER_HELP: Record<string, { variable: TrainEnvName; help: Help }> = {
  'quality-gate': {
    variable: 'QUALITY_GATE_MAX_AGE_MAE',
    help: ['MAE', 'promote runs with test age MAE at most this', String(DEFAULT_QUALITY_GATE_MAX_AGE_MAE)],
  },
  threads: {
    variable: 'AGEGENDER_THREADS',
    help: ['N', 'wasm: XNNPACK threads; results do not depend on it', 'every core up to 8, 1 beside replicas'],
  },
  backend: {
    variable: 'AGEGENDER_BACKEND',
    help: ['NAME', `TensorFlow.js backend: ${BACKEND_CHOICES.join(', ')}`, 'auto'],
  },
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

interface TrainFlag {
  readonly variable: TrainEnvName
  readonly help: Help
}

/** Flag name (without `--`) → the job variable it sets and its help. */
export const TRAIN_FLAGS: Readonly<Record<string, TrainFlag>> = {
  ...Object.fromEntries(
    (Object.keys(TRAIN_ENV) as Array<keyof typeof TRAIN_ENV>).map((setting) => [
      kebab(setting),
      { variable: TRAIN_ENV[setting], help: SETTING_HELP[setting] },
    ])
  ),
  ...OTHER_HELP,
}

/** The help lines of the training flags, aligned like the rest of `npm start --help`. */
export function trainFlagUsage(width = 22): string {
  const line = ([flag, { variable, help }]: [string, TrainFlag]) => {
    const [argument, text, byDefault] = help
    const described = [text, `[${variable}]`, byDefault && `(default ${byDefault})`].filter(Boolean).join(' ')
    return `  ${`--${flag} ${argument}`.padEnd(width - 1)} ${described}`
  }
  return Object.entries(TRAIN_FLAGS).map(line).join('\n')
}

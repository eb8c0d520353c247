/**
 * Training settings: one zod schema, parsed once at the edge (CLI flags or the job's environment).
 * @module
 */
import { z } from 'zod'
import { defaultWasmThreads, MAX_WASM_THREADS } from '../core/engine/index.js'
import { parseSettings } from '../core/zod-issues.js'

export const TrainConfig = z.object({
  /** 11 at 64 px with replicas on our GEMM: 78 minutes measured on a 2-core machine (README, Defaults). */
  epochs: z.coerce.number().int().min(1).max(1000).default(11),
  imageSize: z.coerce
    .number()
    .int()
    .min(32)
    .max(512)
    .refine((v) => v % 32 === 0, 'image size must be a multiple of 32')
    .default(64),
  /**
   * Progressive resizing: the first epochs train on smaller images, from this size (px) up to `imageSize` (see
   * {@link trainingSizeAt}); 0 trains every epoch at `imageSize`. Validation, test and export always use `imageSize`.
   */
  progressiveFrom: z.coerce
    .number()
    .int()
    .min(0)
    .max(512)
    .refine(
      (v) => v === 0 || (v >= 16 && v % 8 === 0),
      'progressive start size must be 0 (off) or a multiple of 8 from 16'
    )
    .default(0),
  batchSize: z.coerce.number().int().min(1).max(1024).default(32),
  /** Peak Adam learning rate, reached after warm-up, then cosine decay to `learningRate * minLearningRateRatio`. */
  learningRate: z.coerce.number().positive().max(1).default(1e-3),
  minLearningRateRatio: z.coerce.number().min(0).max(1).default(0.02),
  /** Share of all steps spent warming the learning rate up linearly from near zero. */
  warmupFraction: z.coerce.number().min(0).max(0.5).default(0.03),
  /**
   * `l1`: a regression head trained on the L1 error. `dldl`: a distribution head over ages 0–116 trained with
   * DLDL-v2 (KL to a Gaussian label distribution, sigma 2 years, + L1 of its expectation). `mean-variance`: the
   * same head trained with the mean-variance loss (Pan et al., 2018).
   */
  ageLoss: z.enum(['l1', 'dldl', 'mean-variance']).default('dldl'),
  /**
   * Decay of an exponential moving average of the weights that validation, the best-epoch choice and the
   * exported model use (e.g. 0.998); 0 turns it off.
   */
  ema: z.coerce
    .number()
    .min(0)
    .max(0.99999)
    .refine((v) => v === 0 || v >= 0.5, 'ema decay must be 0 (off) or between 0.5 and 0.99999')
    .default(0.998),
  /** Weight of the gender cross-entropy beside the L1 age loss (years). */
  genderWeight: z.coerce.number().min(0).default(3),
  /** Gender label smoothing ε: targets become label·(1 − ε) + ε/2. 0 turns it off. */
  genderSmoothing: z.coerce.number().min(0).max(0.49).default(0),
  augment: z
    .preprocess((v) => (v === 'false' || v === '0' ? false : v === 'true' || v === '1' ? true : v), z.boolean())
    .default(true),
  dropout: z.coerce.number().min(0).max(0.9).default(0),
  /** Merge byte-identical training images into one (median age; dropped when genders disagree). Val/test untouched. */
  dedupeTrain: z
    .preprocess((v) => (v === 'false' || v === '0' ? false : v === 'true' || v === '1' ? true : v), z.boolean())
    .default(true),
  /** Channels of the first stage (64 = ResNet18). Smaller only for smoke tests. */
  width: z.coerce.number().int().min(4).default(64),
  seed: z.coerce.number().int().default(42),
  /** torchvision ResNet18 `model.safetensors` to initialize the backbone: a path, `s3://bucket/key` or `https://` URL. */
  pretrained: z.string().optional(),
  /** With pretrained weights: backbone learning rate = this × the heads' rate. */
  backboneLearningRateScale: z.coerce.number().min(0).max(1).default(0.1),
  /** With pretrained weights: share of all steps, at the start, with the backbone frozen (heads only). */
  frozenBackboneFraction: z.coerce.number().min(0).max(0.5).default(0),
  /** sha256 (hex) the pretrained file must have. */
  pretrainedSha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .optional(),
  /** Use at most this many images (taken evenly by split), for quick runs. */
  maxImages: z.coerce.number().int().positive().optional(),
  evalBatchSize: z.coerce.number().int().positive().default(64),
  /**
   * Data-parallel replicas on CPU (this thread + workers - 1 worker threads, see parallel-step.ts); `auto` decides
   * by the machine ({@link replicasFor}). BatchNorm normalizes each batch/workers shard separately.
   */
  workers: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(64)]).default('auto'),
})
export type TrainConfig = z.infer<typeof TrainConfig>
export type TrainConfigInput = z.input<typeof TrainConfig>

/**
 * The environment variable of each setting a job can be given: the Batch job definition's contract, which
 * `npm start` passes on too. One table, read by the job's parser and the local system.
 */
export const TRAIN_ENV = {
  epochs: 'TRAIN_EPOCHS',
  imageSize: 'TRAIN_IMAGE_SIZE',
  batchSize: 'TRAIN_BATCH_SIZE',
  learningRate: 'TRAIN_LEARNING_RATE',
  width: 'TRAIN_WIDTH',
  maxImages: 'TRAIN_MAX_IMAGES',
  seed: 'TRAIN_SEED',
  workers: 'TRAIN_WORKERS',
  ageLoss: 'TRAIN_AGE_LOSS',
  progressiveFrom: 'TRAIN_PROGRESSIVE_FROM',
  ema: 'TRAIN_EMA',
  genderSmoothing: 'TRAIN_GENDER_SMOOTHING',
  pretrained: 'TRAIN_PRETRAINED',
  pretrainedSha256: 'TRAIN_PRETRAINED_SHA256',
} as const satisfies Partial<Record<keyof TrainConfig, `TRAIN_${string}`>>
export type TrainEnvName = (typeof TRAIN_ENV)[keyof typeof TRAIN_ENV]
export const TRAIN_ENV_VARIABLES = Object.values(TRAIN_ENV) as TrainEnvName[]

/** The settings' checks across fields, reported like any other bad field. */
const CheckedTrainConfig = TrainConfig.superRefine((c, ctx) => {
  const path = ['progressiveFrom']
  if (c.progressiveFrom > c.imageSize) {
    ctx.addIssue({
      code: 'custom',
      path,
      message: `progressive start size ${c.progressiveFrom} is above the image size ${c.imageSize}`,
    })
  } else if (isProgressive(c) && typeof c.workers === 'number' && c.workers > 1) {
    ctx.addIssue({
      code: 'custom',
      path,
      message: 'progressive resizing runs on one worker (batches grow); drop --workers (threads use the cores)',
    })
  }
})

export function parseTrainConfig(input: TrainConfigInput): TrainConfig {
  return parseSettings(CheckedTrainConfig, input, 'training settings', 'config')
}

/** Whether progressive resizing is on: a start size above 0 and below the image size. */
export function isProgressive(config: Pick<TrainConfig, 'imageSize' | 'progressiveFrom'>): boolean {
  return config.progressiveFrom > 0 && config.progressiveFrom < config.imageSize
}

/**
 * The training image size of `epoch` (0-based) under progressive resizing (fast.ai's progressive resizing,
 * EfficientNetV2's progressive learning): over the first two thirds of the epochs the size grows linearly from
 * `progressiveFrom` to `imageSize` (rounded to a multiple of 8), and the last third trains at `imageSize`, the size
 * the model is validated, tested and served at. Small early epochs cost (size / imageSize)² of a full one.
 */
export function trainingSizeAt(config: Pick<TrainConfig, 'epochs' | 'imageSize' | 'progressiveFrom'>, epoch: number) {
  const { epochs, imageSize, progressiveFrom: from } = config
  const ramp = Math.floor((epochs * 2) / 3)
  if (!isProgressive(config) || epoch >= ramp) return imageSize
  return Math.min(imageSize, Math.round((from + ((imageSize - from) * epoch) / ramp) / 8) * 8)
}

/** The relative cost of training `epoch` (0-based): (size / imageSize)² of a full epoch (see {@link trainingSizeAt}). */
export function epochCost(config: Pick<TrainConfig, 'epochs' | 'imageSize' | 'progressiveFrom'>, epoch: number) {
  return (trainingSizeAt(config, epoch) / config.imageSize) ** 2
}

/**
 * Seconds of training left after `epochsDone` epochs, from epochs this process timed whole (`timed`: 0-based epoch
 * and seconds, validation included), each scaled by its {@link epochCost}; `undefined` before any such epoch.
 */
export function trainingSecondsLeft(
  config: Pick<TrainConfig, 'epochs' | 'imageSize' | 'progressiveFrom'>,
  timed: readonly { readonly epoch: number; readonly seconds: number }[],
  epochsDone: number
): number | undefined {
  if (timed.length === 0) return undefined
  const perFullEpoch =
    timed.reduce((sum, t) => sum + t.seconds, 0) / timed.reduce((sum, t) => sum + epochCost(config, t.epoch), 0)
  let left = 0
  for (let e = epochsDone; e < config.epochs; e++) left += epochCost(config, e)
  return left * perFullEpoch
}

/** Learning rate at `step` of `total`: linear warm-up, then cosine decay. */
export function learningRateAt(config: TrainConfig, step: number, total: number): number {
  const warmup = Math.max(1, Math.round(total * config.warmupFraction))
  const peak = config.learningRate
  if (step < warmup) return (peak * (step + 1)) / warmup
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup))
  const floor = peak * config.minLearningRateRatio
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * t))
}

/** What `workers: 'auto'` is decided by: the backend, whether our GEMM runs here (relaxed SIMD), the cores. */
export interface ReplicaRuntime {
  readonly backend: string
  readonly gemm: boolean
  readonly cores: number
}

/** The fewest images per replica shard: below this a replica's step is mostly overhead. */
export const MIN_SHARD_IMAGES = 16

/**
 * The data-parallel replica count. `auto` is one replica per core, each convolving on our GEMM on its own thread,
 * where the backend is wasm and the GEMM runs (relaxed SIMD, Node 22+): on a 2-core machine 26-29 img/s against
 * about 22 on two XNNPACK threads (README, Engine). Elsewhere, and for fine-tuning and progressive resizing (which
 * run on one), it is 1; shards keep at least {@link MIN_SHARD_IMAGES} images.
 */
export function replicasFor(
  config: Pick<TrainConfig, 'workers' | 'batchSize' | 'pretrained' | 'progressiveFrom' | 'imageSize'>,
  runtime: ReplicaRuntime
): number {
  if (config.workers !== 'auto') return config.workers
  if (runtime.backend !== 'wasm' || !runtime.gemm || config.pretrained || isProgressive(config)) return 1
  return Math.max(1, Math.min(runtime.cores, Math.floor(config.batchSize / MIN_SHARD_IMAGES)))
}

/** A configuration with its replica count decided. */
export type ResolvedTrainConfig = Omit<TrainConfig, 'workers'> & { readonly workers: number }

export function resolveWorkers(config: TrainConfig, runtime: ReplicaRuntime): ResolvedTrainConfig {
  return { ...config, workers: replicasFor(config, runtime) }
}

/** XNNPACK threads (`--threads`, `AGEGENDER_THREADS`): 1 to {@link MAX_WASM_THREADS}; results do not depend on it. */
export const EngineThreads = z.coerce.number().int().min(1).max(MAX_WASM_THREADS)

/**
 * The wasm engine's threads for a training run: as asked, else every core (up to 8), except beside data-parallel
 * replicas (`workers` > 1), which already take the cores.
 */
export function trainingThreads(asked: number | undefined, workers: number): number {
  return asked ?? (workers > 1 ? 1 : defaultWasmThreads())
}

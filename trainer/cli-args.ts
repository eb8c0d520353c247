/**
 * Command-line flags of `npm run train` → {@link TrainConfigInput}. Kept apart from main so it is testable.
 * @module
 */
import { parseArgs } from 'node:util'
import { UsageError } from '../core/errors.js'
import type { TrainConfigInput } from './config.js'

export const TRAIN_USAGE = `Usage: npm run train -- --data <folder|.zip|.tar|.tar.gz> --out <folder> [options]

  --data PATH            dataset: UTKFace-named images, or any images with a labels.csv (filename,age,gender)
  --out PATH             output folder: model/, metrics.json, report.html, checkpoint/
  --epochs N             (default 11)        --image-size S   multiple of 32 (default 64)
  --progressive-from S   train the first two thirds of the epochs on smaller images, growing from S px to
                         --image-size (multiple of 8; default 0: off); the last third and evaluation at --image-size
  --batch B              (default 32)        --lr X           peak Adam learning rate (default 0.001)
  --seed N               (default 42)        --pretrained F   torchvision ResNet18 model.safetensors
  --pretrained-sha256 H  sha256 the --pretrained file must have (path, s3://bucket/key or https:// URL)
  --backbone-lr-scale X  with --pretrained: backbone rate = X × the heads' rate (default 0.1)
  --frozen-backbone X    with --pretrained: share of steps, at the start, with the backbone frozen (default 0)
  --max-images N         use at most N images (quick runs)
  --width N              first-stage channels (64 = ResNet18; smaller for smoke tests)
  --dropout X            dropout before the heads (default 0)
  --gender-weight X      weight of the gender loss (default 3)
  --ema D                average the weights with decay D for validation and export, 0 turns it off (default 0.998)
  --age-loss L           l1 (regression head) | dldl (age distribution, DLDL-v2) | mean-variance (same head) (default dldl)
  --gender-smoothing E   gender label smoothing: targets label·(1-E) + E/2 (default 0)
  --no-augment           no flips, crops or colour jitter
  --no-dedupe            keep byte-identical training images as separate examples (val/test are never changed)
  --resume               continue from --out/checkpoint if present
  --workers N|auto       data-parallel replicas incl. this thread (default auto: one per core, at least 16 images
                         each, where wasm convolves on our GEMM (Node 22+); else 1)
  --threads N            wasm: XNNPACK threads incl. this one; results do not depend on it (default every core up to 8,
                         1 beside replicas; or env AGEGENDER_THREADS)
  --backend NAME         auto | tensorflow-gpu | tensorflow | wasm | cpu (or env AGEGENDER_BACKEND)
`

export interface TrainArgs {
  readonly data: string
  readonly out: string
  readonly resume: boolean
  readonly backend: string | undefined
  readonly threads: string | undefined
  readonly config: TrainConfigInput
}

export function parseTrainArgs(argv: readonly string[]): TrainArgs {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      epochs: { type: 'string' },
      'image-size': { type: 'string' },
      'progressive-from': { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      seed: { type: 'string' },
      pretrained: { type: 'string' },
      'pretrained-sha256': { type: 'string' },
      'backbone-lr-scale': { type: 'string' },
      'frozen-backbone': { type: 'string' },
      'max-images': { type: 'string' },
      width: { type: 'string' },
      workers: { type: 'string' },
      dropout: { type: 'string' },
      'gender-weight': { type: 'string' },
      'age-loss': { type: 'string' },
      'gender-smoothing': { type: 'string' },
      ema: { type: 'string' },
      'no-augment': { type: 'boolean', default: false },
      'no-dedupe': { type: 'boolean', default: false },
      resume: { type: 'boolean', default: false },
      backend: { type: 'string' },
      threads: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) throw new UsageError(TRAIN_USAGE)
  if (!values.data) throw new UsageError(`--data is required\n\n${TRAIN_USAGE}`)
  if (!values.out) throw new UsageError(`--out is required\n\n${TRAIN_USAGE}`)
  const pick = <K extends string>(key: K, value: string | undefined) => (value === undefined ? {} : { [key]: value })
  return {
    data: values.data,
    out: values.out,
    resume: values.resume,
    backend: values.backend,
    threads: values.threads,
    config: {
      ...pick('epochs', values.epochs),
      ...pick('imageSize', values['image-size']),
      ...pick('progressiveFrom', values['progressive-from']),
      ...pick('batchSize', values.batch),
      ...pick('learningRate', values.lr),
      ...pick('seed', values.seed),
      ...pick('pretrained', values.pretrained),
      ...pick('pretrainedSha256', values['pretrained-sha256']),
      ...pick('backboneLearningRateScale', values['backbone-lr-scale']),
      ...pick('frozenBackboneFraction', values['frozen-backbone']),
      ...pick('maxImages', values['max-images']),
      ...pick('width', values.width),
      ...pick('workers', values.workers),
      ...pick('dropout', values.dropout),
      ...pick('genderWeight', values['gender-weight']),
      ...pick('ageLoss', values['age-loss']),
      ...pick('genderSmoothing', values['gender-smoothing']),
      ...pick('ema', values.ema),
      augment: !values['no-augment'],
      dedupeTrain: !values['no-dedupe'],
    } as TrainConfigInput,
  }
}

export { UsageError }

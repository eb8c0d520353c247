/**
 * Deployment settings, read once from CDK context (`cdk.json`, `cdk.context.json` or `-c key=value`) and
 * validated, so a typo fails synthesis naming the key instead of deploying a surprise.
 *
 * `-c` values arrive as strings and `cdk.json` values as JSON, so booleans, numbers and lists accept both
 * (`-c spot=false`, `"spot": false`; `-c instanceTypes=g5.xlarge,g5.2xlarge`, `"instanceTypes": ["g5.xlarge"]`).
 * @module
 */
import type { Node } from 'constructs'
import { z } from 'zod'
import { parseSettings } from '../core/zod-issues.js'

const bool = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean())
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)
const list = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'expected an EC2 instance type like g4dn.xlarge')).min(1)
)

/** timm's `resnet18.tv_in1k`: torchvision's ImageNet-1k ResNet18 weights as safetensors. */
export const DEFAULT_PRETRAINED_URL = 'https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors'

/** Every context key this app reads, with its default. The README's "Context options" table mirrors it. */
export const PipelineSettings = z.object({
  /** Batch GPU instance types; each must have one GPU and at least `jobVcpus` vCPUs and ~15 GiB memory. */
  instanceTypes: list.default(['g4dn.xlarge', 'g5.xlarge']),
  /** Spot capacity (about 60–70% cheaper, may be interrupted; the job definition retries interruptions). */
  spot: bool.default(true),
  /** Ceiling of the compute environment: 8 vCPUs = two `*.xlarge` jobs side by side. */
  maxvCpus: int(4, 1024).default(8),
  /** Batch AMI family. AL2 reached end of support for ECS in June 2026, hence AL2023 by default. */
  batchImageType: z.enum(['ECS_AL2023_NVIDIA', 'ECS_AL2_NVIDIA']).default('ECS_AL2023_NVIDIA'),
  /** Longest a training attempt may run before Batch stops it. */
  jobTimeoutHours: int(1, 14 * 24).default(8),
  /** A job waiting RUNNABLE longer (no capacity, no GPU quota) is cancelled and its run marked failed (1–24). */
  runnableTimeoutHours: int(1, 24).default(6),
  /** The trainer also checkpoints within an epoch this often, for Spot (`CHECKPOINT_MINUTES`). */
  checkpointMinutes: int(1, 120).default(10),
  /** Root volume of the GPU instances, GiB (the trainer image is ~6 GB). */
  rootVolumeGiB: int(30, 2000).default(100),
  /** Base image of trainer/Dockerfile, best a digest-pinned ECR copy (`repo@sha256:…`). Unset: the Dockerfile's tag. */
  trainerBaseImage: z
    .string()
    .regex(/^[a-z0-9./:_-]+(@sha256:[0-9a-f]{64})?$/, 'expected an image reference')
    .optional(),
  trainEpochs: int(1, 1000).default(30),
  trainImageSize: int(32, 512)
    .refine((v) => v % 32 === 0, 'trainImageSize must be a multiple of 32')
    .default(128),
  trainBatchSize: int(1, 1024).default(64),
  /**
   * ImageNet weights the GPU job fine-tunes from (`TRAIN_PRETRAINED`): torchvision's ResNet18 in safetensors form,
   * as timm publishes it (tensor names match torchvision's). Fetched once, then read from the bucket's
   * `pretrained/` cache. An `s3://` URI works too; `''` trains from scratch.
   */
  trainPretrained: z
    .string()
    .refine(
      (v) => v === '' || /^(https:\/\/|s3:\/\/)/.test(v),
      'trainPretrained must be an https:// URL, an s3:// URI or empty'
    )
    .default(DEFAULT_PRETRAINED_URL),
  /** sha256 the pretrained file must have (`TRAIN_PRETRAINED_SHA256`). Unset: the job logs the digest it got. */
  trainPretrainedSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'trainPretrainedSha256 must be 64 hex digits')
    .optional(),
  /** A run is promoted to `models/` only when its test age MAE (years) is at most this. */
  qualityGateMaxAgeMae: z.coerce.number().positive().default(12),
  /** `retain`: the buckets (datasets, runs, models) outlive the stack; `destroy`: emptied and deleted with it. */
  bucketRemovalPolicy: z.enum(['retain', 'destroy']).default('retain'),
  /** `NONE`: public HTTPS endpoint; `AWS_IAM`: callers sign requests with SigV4. */
  predictAuth: z.enum(['NONE', 'AWS_IAM']).default('NONE'),
  predictMemoryMb: int(2048, 3008).default(2048),
  /** Upper bound on concurrent predict invocations (cost guard for a public URL). Unset: account pool. */
  predictReservedConcurrency: int(1, 1000).optional(),
  /** Alarm when predict is invoked more often than this in an hour (cost guard). */
  predictInvocationsAlarmPerHour: int(1, 100_000_000).default(10_000),
  /** E-mail address subscribed to the alarm topic. Unset: alarms exist but notify no one. */
  alarmEmail: z.email('alarmEmail must be an e-mail address').optional(),
  /** Deploy to this account / region. Unset: an environment-agnostic template (the CLI's profile decides). */
  account: z
    .string()
    .regex(/^\d{12}$/, 'account must be 12 digits')
    .optional(),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'region must look like eu-west-1')
    .optional(),
  /** How often a warm predict container re-reads `models/latest.json`. */
  modelRefreshSeconds: int(0, 86_400).default(300),
  /** Deploy the Batch trainer and its trigger; `false` for LocalStack's free edition (no Batch). */
  trainer: bool.default(true),
})
export type PipelineSettings = z.infer<typeof PipelineSettings>

const KEYS = Object.keys(PipelineSettings.shape) as (keyof PipelineSettings)[]

/** Reads and validates the settings from the context of `node` (an App or Stack); throws naming each bad key. */
export function settingsFromContext(node: Node): PipelineSettings {
  const raw = Object.fromEntries(KEYS.map((k) => [k, node.tryGetContext(k)]).filter(([, v]) => v !== undefined))
  return parseSettings(PipelineSettings, raw, 'CDK context', 'context')
}

/**
 * What a training run takes and tells: its items and options, and the events it emits as it goes. The documents
 * it stores (metrics.json, checkpoint/state.json) are in core/train-documents.ts.
 * @module
 */
import type { EngineReport } from '../core/engine/index.js'
import type { Split } from '../core/split.js'
import type { ObjectStore } from '../core/store/object-store.js'
import type { DatasetInfo, EpochRecord, TrainMetrics } from '../core/train-documents.js'
import type { TrainConfig } from './config.js'

export type { Split }

export interface TrainItem {
  readonly name: string
  readonly bytes: Uint8Array
  readonly label: { readonly age: number; readonly gender: 0 | 1; readonly race?: number }
  readonly split: Split
  /** sha256 of `bytes` when the loader already computed it. */
  readonly sha256?: string
}

export type TrainEvent =
  | { type: 'decoded'; images: number; failures: number }
  | { type: 'resumed'; epochsDone: number; batchesDone: number }
  | { type: 'checkpoint'; epochsDone: number; batchesDone: number; step: number }
  /** `secondsLeft`: training time left, from the epochs this process timed whole (absent until one was). */
  | { type: 'epoch'; epoch: number; epochs: number; record: EpochRecord; secondsLeft?: number }
  | { type: 'done'; metrics: TrainMetrics }

export interface TrainOptions {
  readonly items: readonly TrainItem[]
  readonly dataset: DatasetInfo
  readonly config: TrainConfig
  /** Where model/, metrics.json, report.html and checkpoint/ go (relative keys). */
  readonly output: ObjectStore
  /** The engine in use (`initEngine`'s result); its `report`, when given, goes to metrics.json as `engine`. */
  readonly backend: { name: string; description: string; device?: string; report?: EngineReport }
  /** Continue from `checkpoint/` in the output store if one is there. */
  readonly resume?: boolean
  readonly runId?: string
  readonly onEvent?: (event: TrainEvent) => void | Promise<void>
  readonly log?: (line: string) => void
  /** Live progress bars (default: when stderr is a terminal). */
  readonly tty?: boolean
  readonly packageVersion?: string
  /** Caches downloaded pretrained weights under `pretrained/` (the job passes its bucket). */
  readonly pretrainedCache?: ObjectStore
  /**
   * Asked after every training step; `true` saves a checkpoint at once and throws {@link TrainingStopped}
   * (Batch's SIGTERM: ECS allows 30 s before SIGKILL).
   */
  readonly shouldStop?: () => boolean
  /** Also checkpoint within an epoch once this many minutes passed since the last one (Spot). @default - per epoch only */
  readonly checkpointEveryMinutes?: number
  /** Milliseconds clock for `checkpointEveryMinutes`. @default performance.now */
  readonly clock?: () => number
}

/**
 * Checkpoints in the run's store, so a stopped or retried run resumes where it was:
 *
 * ```
 * checkpoint/a/ or checkpoint/b/     one complete checkpoint: model/ (layers format) and optimizer.bin (Adam)
 * checkpoint/best-a/ or best-b/      the model of the best epoch by validation age MAE
 * checkpoint/state.json              CheckpointState: which slots are current, epochs and steps done
 * ```
 *
 * A checkpoint is written into the slot that `state.json` does not point at, and `state.json` is flipped to it
 * only once every file is written: a checkpoint cut short (Spot reclaim, SIGKILL after the grace period) is
 * never read, the previous one stays intact, and no object is ever deleted (the job role has no
 * `s3:DeleteObject`; superseded S3 versions expire by the bucket's lifecycle rule).
 *
 * A checkpoint may be taken mid-epoch (`batchesDone` > 0): on SIGTERM and every few minutes, for Spot. The
 * resumed epoch replays the same shuffled order from the next batch; its augmentation draws differ from an
 * uninterrupted run's.
 *
 * Checkpoints written before slots existed (`checkpoint/model/`, `checkpoint/best/`) are still read.
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { getJson, putJson, type ObjectStore } from '../core/store/object-store.js'
import { loadModel, saveModel, type ModelMeta } from '../core/model-io.js'
import { CheckpointState } from '../core/train-documents.js'

const STATE = 'checkpoint/state.json'
const SLOTS = ['checkpoint/a/', 'checkpoint/b/'] as const
const BEST_SLOTS = ['checkpoint/best-a/', 'checkpoint/best-b/'] as const
const LEGACY_PREFIX = 'checkpoint/'
const LEGACY_BEST = 'checkpoint/best/'

/** The slot of `slots` that `current` is not. */
const other = (slots: readonly [string, string], current: string | undefined) =>
  current === slots[0] ? slots[1] : slots[0]

/**
 * Writes model and optimizer into the free slot, then flips `state.json` to it.
 * @returns the prefix written.
 */
export async function saveCheckpoint(
  store: ObjectStore,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  meta: ModelMeta,
  state: Omit<CheckpointState, 'optimizerSpecs' | 'averageSpecs' | 'version' | 'prefix'>,
  averages?: Array<{ name: string; tensor: tf.Tensor }>
): Promise<string> {
  const current = await readCheckpointState(store)
  const prefix = other(SLOTS, current?.prefix)
  await saveModel(model, meta, store, `${prefix}model/`)
  const named = await optimizer.getWeights()
  const { data, specs } = await tf.io.encodeWeights(named)
  await store.put(`${prefix}optimizer.bin`, new Uint8Array(data as ArrayBuffer))
  let averageSpecs: tf.io.WeightsManifestEntry[] | undefined
  if (averages) {
    const encoded = await tf.io.encodeWeights(averages)
    await store.put(`${prefix}average.bin`, new Uint8Array(encoded.data as ArrayBuffer))
    averageSpecs = encoded.specs
  }
  // state.json last: until it is written, the previous checkpoint is the current one
  await putJson(store, STATE, {
    version: 1,
    ...state,
    prefix,
    optimizerSpecs: specs,
    ...(averageSpecs ? { averageSpecs } : {}),
  } satisfies CheckpointState)
  return prefix
}

/**
 * Writes the best model into the best slot `state.json` does not point at.
 * @returns its prefix: pass it as `bestPrefix` to the next `saveCheckpoint`, which makes it current.
 */
export async function saveBest(store: ObjectStore, model: tf.LayersModel, meta: ModelMeta): Promise<string> {
  const current = await readCheckpointState(store)
  const prefix = other(BEST_SLOTS, current?.bestPrefix)
  await saveModel(model, meta, store, prefix)
  return prefix
}

export async function readCheckpointState(store: ObjectStore): Promise<CheckpointState | undefined> {
  return getJson(store, STATE, CheckpointState)
}

/** Where the best model of `state` is. */
export const bestPrefixOf = (state: Pick<CheckpointState, 'bestPrefix'> | undefined): string =>
  state?.bestPrefix ?? LEGACY_BEST

/**
 * Restores the checkpoint `state` points at into `model` (weights) and `optimizer` (moments).
 * @returns the saved weight averages, when the checkpoint has them (the caller disposes them).
 */
export async function restoreCheckpoint(
  store: ObjectStore,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  state: CheckpointState
): Promise<tf.NamedTensorMap | undefined> {
  const prefix = state.prefix ?? LEGACY_PREFIX
  await copyWeightsFrom(store, `${prefix}model/`, model)
  const bytes = await store.get(`${prefix}optimizer.bin`)
  if (!bytes) throw new Error(`checkpoint ${prefix} is missing optimizer.bin`)
  const map = tf.io.decodeWeights(bytes.slice().buffer as ArrayBuffer, state.optimizerSpecs)
  await optimizer.setWeights(state.optimizerSpecs.map((s) => ({ name: s.name, tensor: map[s.name]! })))
  if (!state.averageSpecs) return undefined
  const averages = await store.get(`${prefix}average.bin`)
  if (!averages) throw new Error(`checkpoint ${prefix} is missing average.bin`)
  return tf.io.decodeWeights(averages.slice().buffer as ArrayBuffer, state.averageSpecs)
}

/** Loads the weights saved under `prefix` into an existing model of the same architecture. */
export async function copyWeightsFrom(store: ObjectStore, prefix: string, model: tf.LayersModel): Promise<void> {
  const { model: saved } = await loadModel(store, prefix)
  model.setWeights(saved.getWeights())
  saved.dispose()
}

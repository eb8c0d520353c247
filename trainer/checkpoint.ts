/**
 * Per-epoch checkpoints in the run's store, so a stopped or retried run resumes where it was:
 *
 * ```
 * checkpoint/model/        the model after the last finished epoch (layers format)
 * checkpoint/best/         the model of the best epoch by validation age MAE
 * checkpoint/optimizer.bin Adam's moments and step count (tf.io weight encoding)
 * checkpoint/state.json    CheckpointState
 * ```
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { getJson, putJson, type ObjectStore } from '../core/store/object-store.js'
import { loadModel, saveModel, type ModelMeta } from '../core/model-io.js'
import type { EpochRecord } from './train.js'

export interface CheckpointState {
  readonly version: 1
  /** Epochs finished (1-based count). */
  readonly epochsDone: number
  readonly step: number
  readonly history: EpochRecord[]
  readonly best: { epoch: number; valAgeMae: number } | null
  readonly optimizerSpecs: tf.io.WeightsManifestEntry[]
  /** Settings that must not change across a resume (image size, width, batch size...). */
  readonly fingerprint: string
}

const STATE = 'checkpoint/state.json'

export async function saveCheckpoint(
  store: ObjectStore,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  meta: ModelMeta,
  state: Omit<CheckpointState, 'optimizerSpecs' | 'version'>
): Promise<void> {
  await saveModel(model, meta, store, 'checkpoint/model/')
  const named = await optimizer.getWeights()
  const { data, specs } = await tf.io.encodeWeights(named)
  await store.put('checkpoint/optimizer.bin', new Uint8Array(data as ArrayBuffer))
  // state.json last: a checkpoint without it is incomplete and ignored
  await putJson(store, STATE, { version: 1, ...state, optimizerSpecs: specs } satisfies CheckpointState)
}

export async function saveBest(store: ObjectStore, model: tf.LayersModel, meta: ModelMeta): Promise<void> {
  await saveModel(model, meta, store, 'checkpoint/best/')
}

export async function readCheckpointState(store: ObjectStore): Promise<CheckpointState | undefined> {
  return getJson<CheckpointState>(store, STATE)
}

/** Restores the last checkpoint into `model` (weights) and `optimizer` (moments). */
export async function restoreCheckpoint(
  store: ObjectStore,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  state: CheckpointState
): Promise<void> {
  await copyWeightsFrom(store, 'checkpoint/model/', model)
  const bytes = await store.get('checkpoint/optimizer.bin')
  if (!bytes) throw new Error('checkpoint is missing optimizer.bin')
  const map = tf.io.decodeWeights(bytes.slice().buffer as ArrayBuffer, state.optimizerSpecs)
  await optimizer.setWeights(state.optimizerSpecs.map((s) => ({ name: s.name, tensor: map[s.name]! })))
}

/** Loads the weights saved under `prefix` into an existing model of the same architecture. */
export async function copyWeightsFrom(store: ObjectStore, prefix: string, model: tf.LayersModel): Promise<void> {
  const { model: saved } = await loadModel(store, prefix)
  model.setWeights(saved.getWeights())
  saved.dispose()
}

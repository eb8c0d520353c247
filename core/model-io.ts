/**
 * Saving and loading the model through an {@link ObjectStore}, in the TensorFlow.js layers format, with
 * `meta.json` beside it: everything prediction needs (input size, normalization, output meaning, version).
 *
 * ```
 * <prefix>model.json     topology + weights manifest (tf.loadLayersModel can read it from any URL too)
 * <prefix>weights.bin    float32 weights
 * <prefix>meta.json      ModelMeta
 * ```
 * @module
 */
import * as tf from '@tensorflow/tfjs'
import { z } from 'zod'
import { getJson, putJson, type ObjectStore } from './store/object-store.js'
import { AgeIntervalCalibration } from './age-interval.js'
import { IMAGENET } from './preprocess.js'

export const MODEL_FORMAT = 'agegender-tfjs-layers'
export const MODEL_FORMAT_VERSION = 1

export const ModelMeta = z.object({
  format: z.literal(MODEL_FORMAT),
  formatVersion: z.literal(MODEL_FORMAT_VERSION),
  architecture: z.string(),
  inputSize: z.number().int().positive(),
  normalization: z.object({
    mean: z.tuple([z.number(), z.number(), z.number()]),
    std: z.tuple([z.number(), z.number(), z.number()]),
  }),
  /** Average the prediction of the image and its mirror image. */
  testTimeFlip: z.boolean(),
  /**
   * The model sees the centred square of this fraction of the decoded image's side, resampled to `inputSize`
   * (the mean side of the training crops; 1, the whole image, for models trained before it or without them).
   */
  centreCrop: z.number().gt(0).lte(1).default(1),
  outputs: z.object({
    age: z.literal('years'),
    gender: z.literal('probability of female'),
  }),
  genderLabels: z.tuple([z.literal('male'), z.literal('female')]),
  runId: z.string().optional(),
  createdAt: z.string(),
  trainedWith: z.object({ backend: z.string(), epochs: z.number(), packageVersion: z.string() }).partial().optional(),
  summary: z.record(z.string(), z.number()).optional(),
  /** Calibrated age ranges (split-conformal on the validation split); absent in models trained before them. */
  ageInterval: AgeIntervalCalibration.optional(),
})
export type ModelMeta = z.infer<typeof ModelMeta>

/** The layout of one tensor in a weights file (tf.io.WeightsManifestEntry). */
export const WeightSpec = z.object({
  name: z.string(),
  shape: z.array(z.number().int()),
  dtype: z.enum(['float32', 'int32', 'bool', 'string', 'complex64']),
  group: z.enum(['model', 'optimizer']).optional(),
  quantization: z
    .object({
      scale: z.number().optional(),
      min: z.number().optional(),
      dtype: z.enum(['uint16', 'uint8', 'float16']),
    })
    .optional(),
})
export type WeightSpec = z.infer<typeof WeightSpec>

/** `model.json` as {@link storeIOHandler} writes it (tf.io.ModelJSON); the topology goes to tfjs unchecked. */
const ModelJson = z.object({
  modelTopology: z.looseObject({}),
  format: z.string().optional(),
  generatedBy: z.string().optional(),
  convertedBy: z.string().nullable().optional(),
  weightsManifest: z.array(z.object({ paths: z.array(z.string()), weights: z.array(WeightSpec) })),
  /** Loss and metrics of a compiled model: tfjs compiles the loaded model with them. */
  trainingConfig: z
    .custom<tf.io.TrainingConfig>(
      (v) => typeof v === 'object' && v !== null && 'loss' in v,
      'expected a training config'
    )
    .optional(),
})

export function defaultMeta(inputSize: number, extra: Partial<ModelMeta> = {}): ModelMeta {
  return {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    architecture: 'resnet18-two-heads',
    inputSize,
    normalization: { mean: [...IMAGENET.mean], std: [...IMAGENET.std] },
    testTimeFlip: true,
    centreCrop: 1,
    outputs: { age: 'years', gender: 'probability of female' },
    genderLabels: ['male', 'female'],
    createdAt: new Date().toISOString(),
    ...extra,
  }
}

/** A tf.io handler that reads and writes `model.json` + `weights.bin` under `prefix` in `store`. */
export function storeIOHandler(store: ObjectStore, prefix: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const weightData = artifacts.weightData
      if (!weightData) throw new Error('model has no weight data to save')
      const bytes = new Uint8Array(tf.io.CompositeArrayBuffer.join(weightData))
      await store.put(`${prefix}weights.bin`, bytes, { contentType: 'application/octet-stream' })
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        weightsManifest: [{ paths: ['./weights.bin'], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
      }
      await putJson(store, `${prefix}model.json`, modelJson)
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) }
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const modelJson = await getJson(store, `${prefix}model.json`, ModelJson)
      if (!modelJson) throw new Error(`no model at ${store.location}/${prefix}model.json`)
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights)
        const parts: ArrayBuffer[] = []
        for (const group of manifest) {
          for (const path of group.paths) {
            const bytes = await store.get(prefix + path.replace(/^\.\//, ''))
            if (!bytes) throw new Error(`missing weights file ${prefix}${path}`)
            parts.push(bytes.slice().buffer as ArrayBuffer)
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(parts)]
      })
    },
  }
}

export async function saveModel(model: tf.LayersModel, meta: ModelMeta, store: ObjectStore, prefix: string) {
  await model.save(storeIOHandler(store, prefix))
  await putJson(store, `${prefix}meta.json`, meta)
}

export async function loadModel(
  store: ObjectStore,
  prefix: string
): Promise<{ model: tf.LayersModel; meta: ModelMeta }> {
  const meta = await getJson(store, `${prefix}meta.json`, ModelMeta)
  if (meta === undefined) throw new Error(`no meta.json at ${store.location}/${prefix}`)
  const model = await tf.loadLayersModel(storeIOHandler(store, prefix))
  return { model, meta }
}

/**
 * Where a folder keeps its model: under `model/` in a training output folder (and a promoted copy of one), at
 * the root in a model folder (`model.json` + `meta.json`).
 */
export async function modelPrefixIn(store: ObjectStore): Promise<'model/' | ''> {
  return (await store.get('model/meta.json')) ? 'model/' : ''
}

/** Copies a saved model (every object under `from`) to `to`, e.g. when a run is promoted. */
export async function copyPrefix(store: ObjectStore, from: string, to: string): Promise<number> {
  const objects = await store.list(from)
  for (const o of objects) {
    const bytes = await store.get(o.key)
    if (bytes) await store.put(to + o.key.slice(from.length), bytes)
  }
  return objects.length
}

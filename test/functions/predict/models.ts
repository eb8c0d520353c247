/**
 * Tiny real models for the predict tests: saved through `saveModel` as a training run would leave them, and
 * promoted by writing `models/latest.json` the way the trainer's `promote` does.
 * @module
 */
import {
  FacePipeline,
  type FaceAnswer,
  type FaceDetector,
  type FaceMode,
  type ImageAnswer,
} from '../../../core/faces.js'
import { createModel } from '../../../core/model.js'
import { defaultMeta, loadModel, saveModel, type ModelMeta } from '../../../core/model-io.js'
import { Predictor, type AgeGender } from '../../../core/predictor.js'
import { LATEST_MODEL_KEY, modelPrefix, type Promotion } from '../../../core/runs.js'
import { putJson, type ObjectStore } from '../../../core/store/object-store.js'
import { metricsDocument } from '../../support/metrics.js'

export const TINY = { inputSize: 32, width: 8 } as const

/** A calibration as training writes it (two bands on the predicted age), for models that have one. */
export const TEST_CALIBRATION: NonNullable<ModelMeta['ageInterval']> = {
  level: 0.9,
  method: 'split-conformal',
  bands: [
    { from: 0, to: 30, below: 4.25, above: 6.5, count: 40 },
    { from: 30, to: null, below: 9.75, above: 12.125, count: 60 },
  ],
}

/**
 * Saves a freshly initialised tiny model (weights from `seed`) and its metrics under `models/<runId>/`;
 * `meta` adds to its meta.json (e.g. an `ageInterval`).
 */
export async function saveTinyModel(
  store: ObjectStore,
  runId: string,
  seed: number,
  meta: Partial<ModelMeta> = {}
): Promise<string> {
  const prefix = modelPrefix(runId)
  const model = createModel({ ...TINY, seed })
  await saveModel(model, defaultMeta(TINY.inputSize, { runId, ...meta }), store, prefix)
  model.dispose()
  await putJson(store, `${prefix}metrics.json`, metricsDocument({ runId, val: null, epochs: 3 }))
  return prefix
}

/** Points `models/latest.json` at `models/<runId>/` (which need not exist, to test failed loads). */
export async function promote(store: ObjectStore, runId: string): Promise<Promotion> {
  const promotion: Promotion = {
    runId,
    modelPrefix: modelPrefix(runId),
    promotedAt: new Date().toISOString(),
    summary: { testAgeMae: 7.5 },
  }
  await putJson(store, LATEST_MODEL_KEY, promotion)
  return promotion
}

/** What the core Predictor says about `image` with the model saved for `runId`: the reference for the API. */
export async function predictDirectly(store: ObjectStore, runId: string, image: Uint8Array): Promise<AgeGender> {
  const { model, meta } = await loadModel(store, modelPrefix(runId))
  try {
    const [result] = await new Predictor(model, meta).predictImages([image])
    return result!
  } finally {
    model.dispose()
  }
}

/** What the core face pipeline says about `image` with the model saved for `runId`: the reference for the API. */
export async function analyzeDirectly(
  store: ObjectStore,
  runId: string,
  image: Uint8Array,
  mode: FaceMode = 'auto',
  detector?: FaceDetector
): Promise<ImageAnswer> {
  const { model, meta } = await loadModel(store, modelPrefix(runId))
  try {
    return await new FacePipeline({ predictor: new Predictor(model, meta), ...(detector ? { detector } : {}) }).analyze(
      image,
      mode
    )
  } finally {
    model.dispose()
  }
}

/** A face as the API writes it: ages to 0.1 year, probabilities and scores to 1e-4, boxes to whole pixels and 1e-4. */
export function onTheWire(face: FaceAnswer): FaceAnswer {
  const r1 = (v: number) => Math.round(v * 10) / 10
  const r4 = (v: number) => Math.round(v * 1e4) / 1e4
  const box = (b: FaceAnswer['box'], r: (v: number) => number) => ({
    x: r(b.x),
    y: r(b.y),
    width: r(b.width),
    height: r(b.height),
  })
  return {
    box: box(face.box, Math.round),
    boxRelative: box(face.boxRelative, r4),
    score: face.score === null ? null : r4(face.score),
    method: face.method,
    age: r1(face.age),
    ageRange: face.ageRange
      ? { low: r1(face.ageRange.low), high: r1(face.ageRange.high), level: face.ageRange.level }
      : null,
    gender: face.gender,
    genderProbability: r4(face.genderProbability),
  }
}

/**
 * Tiny real models for the predict tests: saved through `saveModel` as a training run would leave them, and
 * promoted by writing `models/latest.json` the way the trainer's `promote` does.
 * @module
 */
import { createModel } from '../../../core/model.js'
import { defaultMeta, loadModel, saveModel } from '../../../core/model-io.js'
import { Predictor, type AgeGender } from '../../../core/predictor.js'
import { LATEST_MODEL_KEY, modelPrefix, type Promotion } from '../../../core/runs.js'
import { putJson, type ObjectStore } from '../../../core/store/object-store.js'

export const TINY = { inputSize: 32, width: 8 } as const

/** Saves a freshly initialised tiny model (weights from `seed`) and its metrics under `models/<runId>/`. */
export async function saveTinyModel(store: ObjectStore, runId: string, seed: number): Promise<string> {
  const prefix = modelPrefix(runId)
  const model = createModel({ ...TINY, seed })
  await saveModel(model, defaultMeta(TINY.inputSize, { runId }), store, prefix)
  model.dispose()
  const group = { count: 10, ageMae: 7.5, ageRmse: 9.1, cs5: 0.4, genderAccuracy: 0.8, genderMae: 0.3 }
  await putJson(store, `${prefix}metrics.json`, {
    schemaVersion: 1,
    runId,
    createdAt: '2026-11-20T09:00:00.000Z',
    test: { ...group, byAgeBand: {}, byGender: {}, byRace: {} },
    val: null,
    bestEpoch: 3,
    baselines: { medianAge: 30, medianAgeMae: 15, majorityGender: 'male', majorityGenderAccuracy: 0.52 },
    history: [{ epoch: 1 }],
  })
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

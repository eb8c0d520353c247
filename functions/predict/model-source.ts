/**
 * The promoted model, loaded once per container and swapped when `models/latest.json` changes.
 *
 * - Lazy: nothing is read until the first request; `models/latest.json` is re-read at most every
 *   `refreshSeconds`, by the request that finds the last check too old (no timers: a frozen Lambda container
 *   would not run them, and a warm one would pay for reads nobody asked for).
 * - Requests arriving while a check or load is under way share it: one download per promotion, not one per request.
 * - A failed refresh keeps serving the model it has, logs, and is retried after the same interval. A failed
 *   first load is a {@link ModelLoadError}; with nothing promoted at all it is a {@link NoModelError}.
 * - After a swap the old model is disposed once the last request using it is done ({@link ModelSource.use}).
 * - The face detector (optional `detector` factory) is loaded once per container, with the first model, and
 *   shared by every model served after it. A detector that fails to load is logged and retried with the next
 *   model load; meanwhile the model serves without one (`auto` answers for the whole image and says so).
 *
 * A missing `models/latest.json` reads as 403 AccessDenied on S3 when the role may not list the bucket
 * (see infra/predict-api.ts): both 403 and 404 mean "nothing promoted yet".
 * @module
 */
import { FacePipeline, type FaceDetector } from '../../core/faces.js'
import { loadInferenceModel } from '../../core/inference-model.js'
import type { ModelMeta } from '../../core/model-io.js'
import { Predictor } from '../../core/predictor.js'
import { LATEST_MODEL_KEY, Promotion } from '../../core/runs.js'
import { getJson, type ObjectStore } from '../../core/store/object-store.js'
import { metricsHeadline, TrainMetrics, type MetricsHeadline } from '../../core/train-documents.js'

/** No model has been promoted yet: `models/latest.json` is absent (or unreadable with a 403). */
export class NoModelError extends Error {
  override readonly name = 'NoModelError'
}

/** A model is promoted but could not be loaded, and there is no earlier one to fall back on. */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError'
}

export interface ServedModel {
  readonly predictor: Predictor
  /** The predictor behind the face detector (when there is one): what `/predict` runs. */
  readonly faces: FacePipeline
  readonly meta: ModelMeta
  readonly promotion: Promotion
  /** From `<modelPrefix>metrics.json`; absent when the promotion has none or it is unreadable. */
  readonly metrics?: MetricsHeadline
  /** ISO time the model finished loading in this container. */
  readonly loadedAt: string
  /** Download + parse + warm-up, in seconds. */
  readonly loadSeconds: number
}

/** For health checks: what is served, without loading anything. */
export interface ModelSourceStatus {
  readonly loaded: boolean
  readonly runId?: string
  readonly promotedAt?: string
  /** ISO time of the last completed check of `models/latest.json`. */
  readonly checkedAt?: string
  /** Why the last check or load failed, until one succeeds. */
  readonly lastError?: string
}

/** What the HTTP app needs from a model source. */
export interface ModelProvider {
  /**
   * Runs `fn` with the model to serve now (checking for a newer promotion first when due); the model is not
   * disposed before `fn` settles. @throws NoModelError, ModelLoadError
   */
  use<T>(fn: (model: ServedModel) => Promise<T>): Promise<T>
  status(): ModelSourceStatus
}

export type LogEntry = Readonly<Record<string, unknown>> & { level: 'INFO' | 'WARN' | 'ERROR'; message: string }
export type Log = (entry: LogEntry) => void

export const jsonLineLog: Log = (entry) =>
  console.log(JSON.stringify({ timestamp: new Date().toISOString(), ...entry }))

export interface ModelSourceOptions {
  readonly store: ObjectStore
  /** Least time between two reads of `models/latest.json`; 0 checks on every request. @default 60 */
  readonly refreshSeconds?: number
  /** @default - JSON lines on stdout */
  readonly log?: Log
  /** Milliseconds clock, for tests. @default Date.now */
  readonly now?: () => number
  /** Loads the face detector; called once per container (again only after a failure). @default - none */
  readonly detector?: () => Promise<FaceDetector>
  /** Told of every model (re)load that succeeded, e.g. to record its time as a metric. @default - nothing */
  readonly onLoad?: (loaded: ModelLoaded) => void
}

/** A model (re)load that succeeded: which run, and how long download + parse + warm-up took. */
export interface ModelLoaded {
  readonly runId: string
  readonly loadSeconds: number
}

interface Entry {
  readonly model: ServedModel
  leases: number
  retired: boolean
}

/**
 * @example
 * const models = new ModelSource({ store: new S3Store({ bucket }), refreshSeconds: 60 })
 * const [result] = await models.use((m) => m.predictor.predictImages([jpeg]))
 */
export class ModelSource implements ModelProvider {
  private readonly store: ObjectStore
  private readonly refreshMs: number
  private readonly log: Log
  private readonly now: () => number
  private served: Entry | undefined
  private checkedAt: number | undefined
  private failedAt: number | undefined
  private lastError: Error | undefined
  private pending: Promise<void> | undefined
  private readonly loadDetector: (() => Promise<FaceDetector>) | undefined
  private readonly onLoad: ((loaded: ModelLoaded) => void) | undefined
  private detector: Promise<FaceDetector> | undefined

  constructor(options: ModelSourceOptions) {
    const seconds = options.refreshSeconds ?? 60
    if (!(seconds >= 0)) throw new Error(`refreshSeconds must be 0 or more, got ${seconds}`)
    this.store = options.store
    this.refreshMs = seconds * 1000
    this.log = options.log ?? jsonLineLog
    this.now = options.now ?? Date.now
    this.loadDetector = options.detector
    this.onLoad = options.onLoad
  }

  async use<T>(fn: (model: ServedModel) => Promise<T>): Promise<T> {
    await this.ensureFresh()
    // Taken synchronously after the await: a swap that happened meanwhile has already replaced `served`,
    // and the entry in `served` is never the one being disposed.
    const entry = this.served
    if (!entry) throw new ModelLoadError('no model loaded') // ensureFresh throws first; kept for the types
    entry.leases++
    try {
      return await fn(entry.model)
    } finally {
      entry.leases--
      if (entry.retired && entry.leases === 0) this.disposeEntry(entry)
    }
  }

  /** The model served now, checking for a newer one first when due. @throws NoModelError, ModelLoadError */
  async current(): Promise<ServedModel> {
    return this.use(async (model) => model)
  }

  status(): ModelSourceStatus {
    const p = this.served?.model.promotion
    return {
      loaded: p !== undefined,
      ...(p ? { runId: p.runId, promotedAt: p.promotedAt } : {}),
      ...(this.checkedAt !== undefined ? { checkedAt: new Date(this.checkedAt).toISOString() } : {}),
      ...(this.lastError ? { lastError: this.lastError.message } : {}),
    }
  }

  /** Disposes the served model (once no request uses it); the next request loads again. */
  dispose(): void {
    const entry = this.served
    this.served = undefined
    this.checkedAt = undefined
    if (entry) this.retire(entry)
  }

  private ensureFresh(): Promise<void> {
    const now = this.now()
    if (this.served && this.checkedAt !== undefined && now - this.checkedAt < this.refreshMs) return Promise.resolve()
    // After a failure with nothing to serve, answer from memory until the interval passes, so a broken
    // promotion is not downloaded again by every request.
    if (!this.served && this.failedAt !== undefined && now - this.failedAt < this.refreshMs && this.lastError) {
      return Promise.reject(this.lastError)
    }
    this.pending ??= this.refresh().finally(() => {
      this.pending = undefined
    })
    return this.pending
  }

  private async refresh(): Promise<void> {
    const started = this.now()
    try {
      const promotion = await readPromotion(this.store)
      if (!promotion) {
        if (!this.served) {
          const where = `${this.store.location}/${LATEST_MODEL_KEY}`
          throw new NoModelError(`no model has been promoted yet: ${where} is missing`)
        }
        // Keep answering with what we have rather than going dark over a deleted pointer.
        this.log({
          level: 'WARN',
          message: `${LATEST_MODEL_KEY} disappeared; still serving the loaded model`,
          runId: this.served.model.promotion.runId,
        })
      } else if (!this.served || !samePromotion(promotion, this.served.model.promotion)) {
        this.swap(await this.load(promotion))
      }
      this.checkedAt = started
      this.failedAt = undefined
      this.lastError = undefined
    } catch (err) {
      // "Nothing promoted" is an answer, not a failure: the next request looks again.
      if (err instanceof NoModelError) {
        this.failedAt = undefined
        this.lastError = undefined
        throw err
      }
      const error = err instanceof Error ? err : new Error(String(err))
      this.failedAt = started
      if (!this.served) {
        this.log({ level: 'ERROR', message: 'model load failed', error: error.message })
        this.lastError = new ModelLoadError(`cannot load the promoted model: ${error.message}`, { cause: error })
        throw this.lastError
      }
      this.lastError = error
      // Retried after the interval, not by every request in between.
      this.checkedAt = started
      this.log({
        level: 'ERROR',
        message: 'model refresh failed; still serving the loaded model',
        runId: this.served.model.promotion.runId,
        error: error.message,
      })
    }
  }

  private async load(promotion: Promotion): Promise<ServedModel> {
    const t0 = performance.now()
    const prefix = promotion.modelPrefix.endsWith('/') ? promotion.modelPrefix : `${promotion.modelPrefix}/`
    // BatchNorm folded: same outputs, faster
    const [{ model, meta }, detector] = await Promise.all([loadInferenceModel(this.store, prefix), this.faceDetector()])
    try {
      const predictor = new Predictor(model, meta)
      predictor.warmUp()
      const faces = new FacePipeline({ predictor, ...(detector ? { detector } : {}) })
      const metrics = await this.readMetrics(`${prefix}metrics.json`)
      const loadSeconds = (performance.now() - t0) / 1000
      this.log({ level: 'INFO', message: 'model loaded', runId: promotion.runId, prefix, loadSeconds })
      this.notifyLoaded({ runId: promotion.runId, loadSeconds })
      return {
        predictor,
        faces,
        meta,
        promotion,
        ...(metrics ? { metrics } : {}),
        loadedAt: new Date().toISOString(),
        loadSeconds,
      }
    } catch (err) {
      model.dispose()
      throw err
    }
  }

  /** A failing `onLoad` (a metrics sink) is logged; it never fails the load. */
  private notifyLoaded(loaded: ModelLoaded): void {
    try {
      this.onLoad?.(loaded)
    } catch (err) {
      this.log({ level: 'WARN', message: 'onLoad failed', runId: loaded.runId, error: (err as Error).message })
    }
  }

  /** The shared detector, loading it on first use; `undefined` when there is none or it failed to load. */
  private async faceDetector(): Promise<FaceDetector | undefined> {
    if (!this.loadDetector) return undefined
    this.detector ??= this.loadDetector()
    const loading = this.detector
    try {
      return await loading
    } catch (err) {
      if (this.detector === loading) this.detector = undefined
      this.log({
        level: 'ERROR',
        message: 'face detector failed to load; serving without one (auto answers for the whole image)',
        error: (err as Error).message,
      })
      return undefined
    }
  }

  /** Metrics are informative only: a missing or odd `metrics.json` never stops a model from serving. */
  private async readMetrics(key: string): Promise<MetricsHeadline | undefined> {
    try {
      const metrics = await getJson(this.store, key, TrainMetrics)
      return metrics && metricsHeadline(metrics)
    } catch (err) {
      this.log({ level: 'WARN', message: 'ignoring unreadable metrics.json', key, error: (err as Error).message })
      return undefined
    }
  }

  private swap(next: ServedModel): void {
    const old = this.served
    this.served = { model: next, leases: 0, retired: false }
    if (old) {
      this.log({ level: 'INFO', message: 'model swapped', from: old.model.promotion.runId, to: next.promotion.runId })
      this.retire(old)
    }
  }

  private retire(entry: Entry): void {
    entry.retired = true
    if (entry.leases === 0) this.disposeEntry(entry)
  }

  private disposeEntry(entry: Entry): void {
    entry.model.predictor.model.dispose()
  }
}

const samePromotion = (a: Promotion, b: Promotion) =>
  a.runId === b.runId && a.modelPrefix === b.modelPrefix && a.promotedAt === b.promotedAt

/** The current promotion, or `undefined` when there is none (404, or 403 from a role that may not list). */
async function readPromotion(store: ObjectStore): Promise<Promotion | undefined> {
  try {
    return await getJson(store, LATEST_MODEL_KEY, Promotion)
  } catch (err) {
    if (isAccessDenied(err)) return undefined
    throw err
  }
}

function isAccessDenied(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined
  return e?.name === 'AccessDenied' || e?.$metadata?.httpStatusCode === 403
}

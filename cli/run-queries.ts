/**
 * Reading runs back from the store: every run's status, one run's status, and the current promotion. Shared by
 * the CLI and the local system's restart recovery (candidates for `core/runs.ts`).
 * @module
 */
import { LATEST_MODEL_KEY, Promotion, RunStatus, runKeys } from '../core/runs.js'
import { getJson, type ObjectStore } from '../core/store/object-store.js'

export type RunListing =
  | { readonly runId: string; readonly ok: true; readonly status: RunStatus }
  | { readonly runId: string; readonly ok: false; readonly error: string }

const STATUS_KEY = /^runs\/([^/]+)\/status\.json$/

/**
 * Every `runs/<runId>/status.json`, parsed; an unreadable one is listed with the reason instead of failing
 * the whole listing. In run id order.
 */
export async function listRuns(store: ObjectStore): Promise<RunListing[]> {
  const keys = (await store.list('runs/')).flatMap((o) => {
    const runId = STATUS_KEY.exec(o.key)?.[1]
    return runId === undefined ? [] : [runId]
  })
  return Promise.all(keys.map((runId) => readRunListing(store, runId)))
}

async function readRunListing(store: ObjectStore, runId: string): Promise<RunListing> {
  try {
    const status = await readRun(store, runId)
    return status ? { runId, ok: true, status } : { runId, ok: false, error: 'status.json disappeared' }
  } catch (err) {
    return { runId, ok: false, error: err instanceof Error ? err.message : String(err) }
  }
}

/**
 * The run's status, `undefined` when it has none; throws when status.json is not a valid RunStatus.
 *
 * An unreadable document is read again a few times first: the embedded s3rver writes objects in place, so a
 * read racing a write can see a truncated file (S3 itself replaces objects atomically).
 */
export async function readRun(store: ObjectStore, runId: string, retries = 3): Promise<RunStatus | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await readRunOnce(store, runId)
    } catch (err) {
      if (!(err instanceof SyntaxError || err instanceof InvalidStatusError) || attempt >= retries) throw err
      await new Promise((done) => setTimeout(done, 100))
    }
  }
}

class InvalidStatusError extends Error {
  override readonly name = 'InvalidStatusError'
}

async function readRunOnce(store: ObjectStore, runId: string): Promise<RunStatus | undefined> {
  const raw = await getJson(store, runKeys(runId).status)
  if (raw === undefined) return undefined
  const parsed = RunStatus.safeParse(raw)
  if (!parsed.success)
    throw new InvalidStatusError(`runs/${runId}/status.json is not a valid run status: ${parsed.error.message}`)
  return parsed.data
}

/** What `models/latest.json` says the predict endpoint serves, if anything (or if it is unreadable). */
export async function readPromotion(store: ObjectStore): Promise<Promotion | undefined> {
  const raw = await getJson(store, LATEST_MODEL_KEY).catch(() => undefined)
  const parsed = Promotion.safeParse(raw)
  return parsed.success ? parsed.data : undefined
}

export const isTerminal = (state: RunStatus['state']) => state === 'succeeded' || state === 'failed'

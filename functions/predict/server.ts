/**
 * The predict app on a local HTTP port (@hono/node-server): the same `createApp` the Lambda runs, for
 * `npm start`'s local system, for `npm run serve`, and for tests that want a real socket.
 *
 * Run directly (`tsx functions/predict/server.ts`), it reads `STORE_URI` (`s3://bucket`, `file:///dir` or a
 * folder; else `s3://$STORE_BUCKET`), `PORT` (default 8080, 0 for a free one), `HOST` (default 127.0.0.1),
 * `MODEL_REFRESH_SECONDS` (default 60) and `AGEGENDER_BACKEND` (default auto).
 *
 * Backpressure: at most `maxInFlight` predictions at a time (past it, 503 with `Retry-After`, answered at once
 * and without reading the body), and request and header timeouts well under Node's 300 s / 60 s defaults, so a
 * slow or stalled client cannot hold a connection. The Lambda has its own equivalents (reserved concurrency,
 * the function timeout): see local/README.md.
 * @module
 */
import { createAdaptorServer } from '@hono/node-server'
import { realpathSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { initEngine } from '../../core/engine/index.js'
import type { FaceDetector } from '../../core/faces.js'
import { storeFromUri, type ObjectStore } from '../../core/store/index.js'
import { createApp } from './app.js'
import { parseServerConfig } from './config.js'
import { ModelSource } from './model-source.js'

export interface PredictServerOptions {
  /** Where `models/latest.json` and the promoted models are. */
  readonly store: ObjectStore
  /** TCP port; 0 picks a free one (read it from `url`). @default 8080 */
  readonly port?: number
  /** @default '127.0.0.1' - this machine only */
  readonly hostname?: string
  /** Least time between two reads of `models/latest.json`. @default 60 */
  readonly refreshSeconds?: number
  /** Loads the face detector (once). @default - none: `auto` answers for the whole image */
  readonly detector?: () => Promise<FaceDetector>
  /** Predictions in flight at once; more get 503 with Retry-After. @default {@link DEFAULT_MAX_IN_FLIGHT} */
  readonly maxInFlight?: number
  /** Time a client has to send a whole request. @default 30000 */
  readonly requestTimeoutMs?: number
  /** Time a client has to send the request headers. @default 10000 */
  readonly headersTimeoutMs?: number
}

/** Predictions run one after another on the engine: a short queue is enough, a long one only adds latency. */
export const DEFAULT_MAX_IN_FLIGHT = 8
/** What a client past the cap is told to wait, in seconds. */
export const RETRY_AFTER_SECONDS = 1

export interface PredictServer {
  /** `http://<hostname>:<port>`, without a trailing slash. */
  readonly url: string
  /** Predictions in progress now. */
  inFlight(): number
  /** Stops accepting connections, waits for open requests, and frees the model. */
  close(): Promise<void>
}

/**
 * Serves the predict API until `close()`. The TF.js engine is initialized if the process has not done so
 * (`auto`: the fastest available backend); one that is already running is used as it is.
 * @example
 * const server = await startPredictServer({ store: storeFromUri('s3://my-bucket'), port: 0 })
 * await fetch(`${server.url}/predict`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg })
 * await server.close()
 */
export async function startPredictServer(options: PredictServerOptions): Promise<PredictServer> {
  const hostname = options.hostname ?? '127.0.0.1'
  await initEngine()
  const models = new ModelSource({
    store: options.store,
    ...(options.refreshSeconds === undefined ? {} : { refreshSeconds: options.refreshSeconds }),
    ...(options.detector ? { detector: options.detector } : {}),
  })
  const requestTimeout = options.requestTimeoutMs ?? 30_000
  const headersTimeout = Math.min(options.headersTimeoutMs ?? 10_000, requestTimeout)
  const app = createApp({ models })
  const limited = limitInFlight(app.fetch, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)
  const server = createAdaptorServer({
    fetch: limited.fetch,
    serverOptions: {
      requestTimeout,
      headersTimeout,
      keepAliveTimeout: 5_000,
      // how often Node looks for requests past those limits (its default, 30 s, would let them run on)
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, headersTimeout / 2)),
    },
  }) as Server
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 8080, hostname, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`,
    inFlight: limited.inFlight,
    close: async () => {
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
      // Keep-alive sockets would hold close() open until they time out.
      server.closeIdleConnections()
      await closed
      models.dispose()
    },
  }
}

type FetchHandler = (request: Request, ...rest: never[]) => Response | Promise<Response>

/**
 * Answers `POST /predict` with 503 and `Retry-After` while `max` predictions are already in flight, before
 * reading the body; everything else (health, model info) always goes through.
 */
export function limitInFlight<F extends FetchHandler>(fetch: F, max: number): { fetch: F; inFlight: () => number } {
  let inFlight = 0
  const limited = async (request: Request, ...rest: never[]): Promise<Response> => {
    if (request.method !== 'POST') return fetch(request, ...rest)
    if (inFlight >= max) {
      return Response.json(
        { error: 'busy', message: `${max} predictions are already in progress: retry in ${RETRY_AFTER_SECONDS} s` },
        { status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } }
      )
    }
    inFlight++
    try {
      return await fetch(request, ...rest)
    } finally {
      inFlight--
    }
  }
  return { fetch: limited as F, inFlight: () => inFlight }
}

async function main(): Promise<void> {
  const config = parseServerConfig(process.env)
  const engine = await initEngine({ backend: config.backend })
  const server = await startPredictServer({
    store: storeFromUri(config.storeUri),
    port: config.port,
    hostname: config.hostname,
    refreshSeconds: config.refreshSeconds,
  })
  console.log(`predict API on ${server.url} (store ${config.storeUri}, ${engine.description})`)
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err)
        process.exit(1)
      }
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(realpathSync(entry)).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(1)
  })
}

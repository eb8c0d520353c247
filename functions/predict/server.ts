/**
 * The predict app on a local HTTP port (@hono/node-server): the same `createApp` the Lambda runs, for
 * `npm start`'s local system, for `npm run serve`, and for tests that want a real socket.
 *
 * Run directly (`tsx functions/predict/server.ts`), it reads `STORE_URI` (`s3://bucket`, `file:///dir` or a
 * folder; else `s3://$STORE_BUCKET`), `PORT` (default 8080, 0 for a free one), `HOST` (default 127.0.0.1),
 * `MODEL_REFRESH_SECONDS` (default 60) and `AGEGENDER_BACKEND` (default auto).
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
}

export interface PredictServer {
  /** `http://<hostname>:<port>`, without a trailing slash. */
  readonly url: string
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
  const server = createAdaptorServer({ fetch: createApp({ models }).fetch }) as Server
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
    close: async () => {
      const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
      // Keep-alive sockets would hold close() open until they time out.
      server.closeIdleConnections()
      await closed
      models.dispose()
    },
  }
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
      },
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

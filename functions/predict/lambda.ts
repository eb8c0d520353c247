/**
 * AWS Lambda entry for the predict API behind a Function URL: `handle(app)` and nothing else of substance.
 *
 * At cold start: the environment is parsed (`STORE_BUCKET`, `MODEL_REFRESH_SECONDS` default 60, `WASM_PATH`
 * optional, see `config.ts`) and the TF.js wasm backend initialized (in the init phase, which runs at full CPU).
 * The model itself is loaded by the first request (see `model-source.ts`), so a cold start with nothing
 * promoted yet still answers 503 with a hint instead of failing.
 *
 * Function URL events carry binary request bodies base64-encoded (`isBase64Encoded: true`); the adapter decodes
 * them before the app sees the bytes. Every response is JSON, so binary responses are off.
 * @module
 */
import { handle } from 'hono/aws-lambda'
import { initEngine } from '../../core/engine/index.js'
import { S3Store } from '../../core/store/s3-store.js'
import { createApp } from './app.js'
import { parseLambdaConfig } from './config.js'
import { loadFaceDetector } from '../../core/face-detector.js'
import { jsonLineLog, ModelSource } from './model-source.js'

const config = parseLambdaConfig(process.env)
const engine = await initEngine({ backend: 'wasm', ...(config.wasmPath ? { wasmPath: config.wasmPath } : {}) })
jsonLineLog({
  level: 'INFO',
  message: 'predict function started',
  backend: engine.description,
  refreshSeconds: config.refreshSeconds,
  // BlazeFace weights travel in the bundle (FACE_DETECTOR_DIR); loaded once per container, on first use
  detector: () => loadFaceDetector(),
})

const models = new ModelSource({
  store: new S3Store({ bucket: config.bucket }),
  refreshSeconds: config.refreshSeconds,
})

export const handler = handle(createApp({ models }), { isContentTypeBinary: () => false })

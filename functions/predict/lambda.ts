/**
 * AWS Lambda entry for the predict API behind a Function URL: `handle(app)` with Powertools around it.
 *
 * At cold start: the environment is parsed (`STORE_BUCKET`, `MODEL_REFRESH_SECONDS` default 60, `WASM_PATH`
 * optional, see `config.ts`) and the TF.js wasm backend initialized (in the init phase, which runs at full CPU).
 * The model itself is loaded by the first request (see `model-source.ts`), so a cold start with nothing
 * promoted yet still answers 503 with a hint instead of failing.
 *
 * Function URL events carry binary request bodies base64-encoded (`isBase64Encoded: true`); the adapter decodes
 * them before the app sees the bytes. Every response is JSON, so binary responses are off.
 *
 * Observability (see `../observability.ts`): JSON logs through Powertools Logger with the request id and cold
 * start; EMF metrics in the `AgeGender` namespace, flushed per invocation: `PredictLatency` (ms, every
 * `POST /predict`, with the status code as metadata), `ModelLoadTime` (ms, every model (re)load) and
 * Powertools' `ColdStart`. The local server (`server.ts`) imports none of this.
 * @module
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics'
import type { Context } from 'aws-lambda'
import { handle, type LambdaEvent } from 'hono/aws-lambda'
import { initEngine } from '../../core/engine/index.js'
import { loadFaceDetector } from '../../core/face-detector.js'
import { S3Store } from '../../core/store/s3-store.js'
import { instrument, lambdaLogger, lambdaMetrics, logLines } from '../observability.js'
import { createApp } from './app.js'
import { parseLambdaConfig } from './config.js'
import { ModelSource } from './model-source.js'

/** Metric names, as they appear in CloudWatch. */
export const PREDICT_LATENCY_METRIC = 'PredictLatency'
export const MODEL_LOAD_TIME_METRIC = 'ModelLoadTime'

const config = parseLambdaConfig(process.env)
const logger = lambdaLogger('agegender-predict')
const metrics = lambdaMetrics('agegender-predict')
const log = logLines(logger)
const engine = await initEngine({ backend: 'wasm', ...(config.wasmPath ? { wasmPath: config.wasmPath } : {}) })
log({
  level: 'INFO',
  message: 'predict function started',
  backend: engine.description,
  refreshSeconds: config.refreshSeconds,
})

const models = new ModelSource({
  store: new S3Store({ bucket: config.bucket }),
  refreshSeconds: config.refreshSeconds,
  // BlazeFace weights travel in the bundle (FACE_DETECTOR_DIR); loaded once per container, with the first model
  detector: () => loadFaceDetector(),
  log,
  onLoad: ({ loadSeconds }) => metrics.addMetric(MODEL_LOAD_TIME_METRIC, MetricUnit.Milliseconds, loadSeconds * 1000),
})

const app = handle(createApp({ models, log }), { isContentTypeBinary: () => false })

const isPredict = (event: LambdaEvent) =>
  'rawPath' in event && event.rawPath === '/predict' && event.requestContext.http.method === 'POST'

export const handler = instrument(
  async (event: LambdaEvent, context: Context) => {
    const started = performance.now()
    let statusCode: number | undefined
    try {
      const result = await app(event, context)
      statusCode = result.statusCode
      return result
    } finally {
      if (isPredict(event)) {
        metrics.addMetric(PREDICT_LATENCY_METRIC, MetricUnit.Milliseconds, performance.now() - started)
        metrics.addMetadata('statusCode', String(statusCode ?? 'error'))
      }
    }
  },
  { logger, metrics }
)

/**
 * Powertools for AWS Lambda, wired once for the three Lambda entries (`*\/lambda.ts`) and nothing else: the
 * domain code (handlers, the predict app, the model source) logs through a plain `log(line)` function and
 * never imports this, so the local system and `npm run serve` print their own JSON lines and no EMF.
 *
 * - {@link lambdaLogger}: structured JSON on stdout; level from `POWERTOOLS_LOG_LEVEL` (else `LOG_LEVEL`,
 *   default INFO), service from `POWERTOOLS_SERVICE_NAME` (set per function by infra/node-function.ts).
 * - {@link logLines}: the domain's `log({ level, message, ...keys })` onto that logger.
 * - {@link instrument}: the manual instrumentation Powertools documents for a handler without Middy or a
 *   class decorator: `logger.addContext(context)` (request id, cold start, function name) before the
 *   invocation; after it, `logger.resetKeys()` and, with metrics, `metrics.publishStoredMetrics()`, so every
 *   invocation flushes its own EMF document. It wraps a plain handler and Hono's `handle(app)` alike.
 * @module
 */
import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics } from '@aws-lambda-powertools/metrics'
import type { Context } from 'aws-lambda'

/** The CloudWatch namespace of the functions' metrics. */
export const METRICS_NAMESPACE = 'AgeGender'

/** A log line as the domain code writes it: `level` (INFO, WARN, ERROR, DEBUG), `message`, any other keys. */
export type LogLine = Readonly<Record<string, unknown>>

/** `POWERTOOLS_SERVICE_NAME`, else `fallback` (a bare test, a function deployed without it). */
export const serviceName = (fallback: string): string => process.env['POWERTOOLS_SERVICE_NAME']?.trim() || fallback

/**
 * The function's logger.
 * @example const logger = lambdaLogger('agegender-trigger')
 */
export function lambdaLogger(fallbackService: string): Logger {
  return new Logger({ serviceName: serviceName(fallbackService) })
}

/**
 * The function's metrics, in {@link METRICS_NAMESPACE} with a `service` dimension.
 * @example const metrics = lambdaMetrics('agegender-predict')
 */
export function lambdaMetrics(fallbackService: string): Metrics {
  return new Metrics({ namespace: METRICS_NAMESPACE, serviceName: serviceName(fallbackService) })
}

const METHODS = { DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error', CRITICAL: 'critical' } as const

/**
 * Adapts the domain's `log(line)` to Powertools: `level` picks the method (INFO when unknown), `message` is
 * the message, `timestamp` is dropped (Powertools writes its own), every other key is kept as it is.
 * @example createJobEventHandler({ store, log: logLines(logger) })
 */
export function logLines(logger: Logger): (line: LogLine) => void {
  return (line) => {
    const { level, message, timestamp: _timestamp, ...keys } = line
    const method = METHODS[String(level).toUpperCase() as keyof typeof METHODS] ?? 'info'
    logger[method](typeof message === 'string' ? message : String(message ?? ''), keys)
  }
}

export interface InstrumentOptions {
  readonly logger: Logger
  /** Adds a `ColdStart` metric on the first invocation and flushes stored metrics after each. */
  readonly metrics?: Metrics
}

/**
 * Wraps `handler` with the Powertools manual instrumentation (see the module comment). Metrics are
 * published only when some were added, so an invocation without any prints no "no metrics" warning.
 * @example export const handler = instrument(createHandler(deps), { logger })
 */
export function instrument<E, R>(
  handler: (event: E, context: Context) => Promise<R>,
  { logger, metrics }: InstrumentOptions
): (event: E, context: Context) => Promise<R> {
  return async (event, context) => {
    logger.addContext(context)
    metrics?.captureColdStartMetric(context.functionName)
    try {
      return await handler(event, context)
    } finally {
      if (metrics?.hasStoredMetrics()) metrics.publishStoredMetrics()
      logger.resetKeys()
    }
  }
}

/**
 * The trigger's configuration, parsed once from the Lambda environment at cold start.
 * @module
 */
import { z } from 'zod'
import { parseSettings } from '../../core/zod-issues.js'

const required = (what: string) =>
  z
    .string({ error: `required: ${what}` })
    .trim()
    .min(1, `required: ${what}`)

const EnvSchema = z.object({
  STORE_BUCKET: required('the dataset and run bucket'),
  JOB_QUEUE_ARN: required('the Batch job queue (ARN or name)'),
  JOB_DEFINITION_ARN: required('the Batch job definition (ARN, or name:revision)'),
})

export interface TriggerConfig {
  readonly bucket: string
  readonly jobQueue: string
  readonly jobDefinition: string
}

/** Thrown at cold start when the environment is incomplete; the message names every bad variable. */
export { ConfigError } from '../../core/errors.js'

/**
 * @example
 * const config = parseTriggerConfig(process.env) // { bucket, jobQueue, jobDefinition }
 */
export function parseTriggerConfig(env: Readonly<Record<string, string | undefined>>): TriggerConfig {
  const e = parseSettings(EnvSchema, env, 'trigger environment', '')
  return { bucket: e.STORE_BUCKET, jobQueue: e.JOB_QUEUE_ARN, jobDefinition: e.JOB_DEFINITION_ARN }
}

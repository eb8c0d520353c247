/**
 * One way to say what failed validation, and one way to parse settings with it: every bad field by its path, so a configuration or payload error names
 * each field to fix.
 * @module
 */
import type { z } from 'zod'
import { ConfigError } from './errors.js'

/**
 * `path: message; path: message`, with `root` standing in for the path of an issue about the whole value.
 * @example describeIssues(parsed.error, 'env') // "TRAIN_EPOCHS: Too small: expected number to be >=1"
 */
export function describeIssues(error: z.ZodError, root: string): string {
  return error.issues.map((i) => `${i.path.join('.') || root}: ${i.message}`).join('; ')
}

/**
 * Parses settings with `schema`, or throws a {@link ConfigError} `invalid <what>: <every bad field>`.
 * @example parseSettings(JobEnv, process.env, 'job environment', 'env')
 */
export function parseSettings<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
  root = 'value'
): z.output<S> {
  const parsed = schema.safeParse(input)
  if (parsed.success) return parsed.data
  throw new ConfigError(`invalid ${what}: ${describeIssues(parsed.error, root)}`, { cause: parsed.error })
}

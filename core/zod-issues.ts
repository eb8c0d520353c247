/**
 * One way to say what failed validation: every bad field by its path, so a configuration or payload error names
 * each field to fix.
 * @module
 */
import type { z } from 'zod'

/**
 * `path: message; path: message`, with `root` standing in for the path of an issue about the whole value.
 * @example describeIssues(parsed.error, 'env') // "TRAIN_EPOCHS: Too small: expected number to be >=1"
 */
export function describeIssues(error: z.ZodError, root: string): string {
  return error.issues.map((i) => `${i.path.join('.') || root}: ${i.message}`).join('; ')
}

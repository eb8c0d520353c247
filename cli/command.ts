/**
 * The shape of one CLI command: its own flags (parsed with `node:util` parseArgs next to the global ones) and
 * a `run` that returns the exit code.
 * @module
 */
import type { ParseArgsConfig } from 'node:util'

export type OptionsConfig = NonNullable<ParseArgsConfig['options']>
import type { S3Context } from './context.js'
import { UsageError, type Io } from './io.js'

export interface CommandContext {
  readonly io: Io
  readonly values: Readonly<Record<string, string | boolean | undefined>>
  readonly positionals: readonly string[]
  /** The bucket, opened on first use (commands that need no bucket never ask). */
  s3(): S3Context
}

export interface Command {
  readonly name: string
  /** `<runId> [--follow]` */
  readonly args: string
  readonly summary: string
  /** Extra help lines: options and examples. */
  readonly help: string
  readonly options: OptionsConfig
  run(ctx: CommandContext): Promise<number>
}

/** A string flag's value, if given. */
export const stringFlag = (ctx: CommandContext, name: string) => {
  const v = ctx.values[name]
  return typeof v === 'string' ? v : undefined
}

/** A positive number flag, or `fallback`; throws a usage error on anything else. */
export function numberFlag(ctx: CommandContext, name: string, fallback: number): number {
  const raw = stringFlag(ctx, name)
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${name} must be a positive number, got ${JSON.stringify(raw)}`)
  return n
}

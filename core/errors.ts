/**
 * The two errors every entry point treats alike: a setting that does not parse (exit 1 or a failed cold start,
 * with every bad field named) and a command line that cannot run (exit 2 with the usage).
 * @module
 */

/** Settings that do not parse (flags, environment variables, CDK context); the message names every bad field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** Wrong arguments on a command line: the message says what is wrong, often with the usage text. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

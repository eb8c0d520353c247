/**
 * What a CLI command may touch: two output streams, the environment, the working directory and the clock.
 * `processIo()` is the real one; tests pass their own and read what was written.
 * @module
 */

export interface Output {
  write(text: string): unknown
  /** A terminal: progress bars redraw in place; otherwise progress is printed as plain lines. */
  readonly isTTY?: boolean
}

export interface Io {
  readonly stdout: Output
  readonly stderr: Output
  readonly env: Readonly<Record<string, string | undefined>>
  readonly cwd: string
  readonly now: () => Date
  /** Waits between polls; tests may speed it up. */
  readonly sleep: (ms: number) => Promise<void>
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    now: () => new Date(),
    sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
  }
}

/** Writes a line (or several) to an output. */
export const println = (out: Output, text = '') => void out.write(`${text}\n`)

/** Wrong arguments: exit code 2 and a pointer to the usage text. */
export { UsageError } from '../core/errors.js'

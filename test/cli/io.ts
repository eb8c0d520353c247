/**
 * A CLI `Io` that records what commands write, for assertions on output text.
 */
import type { Io } from '../../cli/io.js'

export interface CapturedIo extends Io {
  stdoutText(): string
  stderrText(): string
}

export function captureIo(options: Partial<Pick<Io, 'env' | 'cwd' | 'now' | 'sleep'>> = {}): CapturedIo {
  let out = ''
  let err = ''
  return {
    stdout: { write: (t: string) => (out += t), isTTY: false },
    stderr: { write: (t: string) => (err += t), isTTY: false },
    env: options.env ?? process.env,
    cwd: options.cwd ?? process.cwd(),
    now: options.now ?? (() => new Date()),
    sleep: options.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms))),
    stdoutText: () => out,
    stderrText: () => err,
  }
}

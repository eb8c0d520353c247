/**
 * Progress for long work: a bar with ETA on a terminal, plain periodic lines in logs (containers, CI).
 * @module
 */
import cliProgress from 'cli-progress'

export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void
  stop(): void
}

export interface ProgressOptions {
  readonly label: string
  readonly total: number
  /** Use a live bar; defaults to whether stderr is a terminal. */
  readonly tty?: boolean
  /** Seconds between plain log lines. @default 30 */
  readonly logEverySeconds?: number
  readonly write?: (line: string) => void
}

const fmt = (fields: Record<string, string | number>) =>
  Object.entries(fields)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(3)) : v}`)
    .join('  ')

export function createProgress(options: ProgressOptions): Progress {
  const { label, total, tty = Boolean(process.stderr.isTTY), logEverySeconds = 30 } = options
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`))
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} {bar} {percentage}% {value}/{total} ETA {eta_formatted} {info}`,
        hideCursor: true,
        etaBuffer: 50,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic
    )
    bar.start(total, 0, { info: '' })
    return {
      update: (done, fields = {}) => bar.update(done, { info: fmt(fields) }),
      stop: () => bar.stop(),
    }
  }
  const start = Date.now()
  let last = 0
  let lastDone = 0
  let lastFields: Record<string, string | number> = {}
  const line = (done: number, fields: Record<string, string | number>) => {
    const elapsed = (Date.now() - start) / 1000
    const eta = done > 0 ? (elapsed / done) * (total - done) : NaN
    const pct = total > 0 ? ((100 * done) / total).toFixed(1) : '100'
    write(
      `${label} ${done}/${total} (${pct}%) elapsed ${elapsed.toFixed(0)}s eta ${Number.isFinite(eta) ? `${eta.toFixed(0)}s` : '?'} ${fmt(fields)}`
    )
  }
  return {
    update(done, fields = {}) {
      lastDone = done
      lastFields = fields
      const now = Date.now()
      if (now - last >= logEverySeconds * 1000 || done === total) {
        last = now
        line(done, fields)
      }
    },
    stop() {
      if (lastDone !== total) line(lastDone, lastFields)
    },
  }
}

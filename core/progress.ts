/**
 * Progress of long work, one wrapper for the trainer and the CLI: on a terminal a redrawn bar with ETA
 * (cli-progress); elsewhere (containers, CI, log files) plain lines, at most every `logEverySeconds` or on
 * each `everyPercent` step, and a last one when the work ends.
 * @module
 */
import cliProgress from 'cli-progress'
import { formatBytes, formatDuration } from './format.js'

export type ProgressFields = Readonly<Record<string, string | number>>

export interface Progress {
  /** Work done so far (items, or bytes with `unit: 'bytes'`), with optional figures to show beside it. */
  update(done: number, fields?: ProgressFields): void
  /** The real total, once known (a packed folder's size is an estimate until the end). */
  setTotal(total: number): void
  /** Ends the bar, or writes the last line. */
  stop(): void
}

export interface ProgressOptions {
  readonly label: string
  readonly total: number
  /** `bytes` shows sizes and a rate. @default 'items' */
  readonly unit?: 'items' | 'bytes'
  /** Draw a live bar; defaults to whether `stream` is a terminal. */
  readonly tty?: boolean
  /** Where the bar is drawn. @default process.stderr */
  readonly stream?: { write(text: string): unknown; readonly isTTY?: boolean }
  /** Where plain lines go. @default a line on `stream` */
  readonly write?: (line: string) => void
  /** Seconds between plain lines. @default 30 */
  readonly logEverySeconds?: number
  /** Also a plain line each time this many more percent are done. @default - none */
  readonly everyPercent?: number
  /** Milliseconds now; tests inject one. @default Date.now */
  readonly clock?: () => number
}

const formatFields = (fields: ProgressFields) =>
  Object.entries(fields)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(3)) : v}`)
    .join('  ')

export function createProgress(options: ProgressOptions): Progress {
  const { label, unit = 'items', logEverySeconds = 30, everyPercent, clock = Date.now } = options
  const stream = options.stream ?? process.stderr
  const write = options.write ?? ((line: string) => void stream.write(`${line}\n`))
  const amount = unit === 'bytes' ? formatBytes : String
  let total = options.total
  const started = clock()
  const rate = (done: number) => {
    const seconds = (clock() - started) / 1000
    return seconds > 0 ? done / seconds : Number.NaN
  }
  const speed = (done: number) => (unit === 'bytes' ? `${formatBytes(rate(done))}/s` : '')

  if (options.tty ?? Boolean(stream.isTTY)) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} {bar} {percentage}% {amount} ETA {eta_formatted} {info}`,
        hideCursor: true,
        etaBuffer: 50,
        stream: stream as NodeJS.WritableStream,
      },
      cliProgress.Presets.shades_classic
    )
    const payload = (done: number, fields: ProgressFields = {}) => ({
      amount: `${amount(done)}/${amount(total)}`,
      info: [speed(done), formatFields(fields)].filter(Boolean).join('  '),
    })
    bar.start(Math.max(1, total), 0, payload(0))
    let last = 0
    return {
      update: (done, fields) => {
        last = done
        bar.update(Math.min(done, Math.max(1, total)), payload(done, fields))
      },
      setTotal: (t) => {
        total = t
        bar.setTotal(Math.max(1, t))
      },
      stop: () => {
        bar.update(Math.min(last, Math.max(1, total)), payload(last))
        bar.stop()
      },
    }
  }

  let lastAt = started
  let lastStep = 0
  let lastDone = 0
  let lastFields: ProgressFields = {}
  let written = false
  const line = (done: number, fields: ProgressFields) => {
    written = true
    const seconds = (clock() - started) / 1000
    const eta = done > 0 ? (total - done) / rate(done) : Number.NaN
    const pct = total > 0 ? ((100 * Math.min(done, total)) / total).toFixed(1) : '100.0'
    const parts = [
      `${label} ${amount(done)}/${amount(total)} (${pct}%)`,
      `elapsed ${formatDuration(seconds)}`,
      `eta ${done >= total ? '0 s' : formatDuration(eta)}`,
      speed(done),
      formatFields(fields),
    ]
    write(parts.filter(Boolean).join('  '))
  }
  return {
    update(done, fields = {}) {
      lastDone = done
      lastFields = fields
      const now = clock()
      const step = everyPercent && total > 0 ? Math.floor((100 * done) / total / everyPercent) : 0
      if (now - lastAt >= logEverySeconds * 1000 || step > lastStep || (done >= total && total > 0)) {
        lastAt = now
        lastStep = step
        line(done, fields)
      }
    },
    setTotal(t) {
      total = t
    },
    stop() {
      if (!written || lastDone < total) line(lastDone, lastFields)
    },
  }
}

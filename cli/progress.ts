/**
 * Progress of a long transfer: a redrawn bar with bytes, rate and ETA on a terminal (cli-progress), plain
 * lines every 10 % (or 15 s) otherwise, so logs and CI output stay readable.
 * @module
 */
import cliProgress from 'cli-progress'
import { formatBytes, formatDuration } from './format.js'
import type { Io } from './io.js'

export interface Progress {
  /** Bytes done so far (monotonic). */
  update(done: number): void
  /** The real total, once known (a packed folder's size is an estimate until the end). */
  setTotal(total: number): void
  stop(): void
}

export function byteProgress(io: Io, label: string, total: number): Progress {
  return io.stderr.isTTY ? barProgress(io, label, total) : lineProgress(io, label, total)
}

function barProgress(io: Io, label: string, initialTotal: number): Progress {
  const started = Date.now()
  let total = Math.max(1, initialTotal)
  const payload = (done: number) => {
    const seconds = (Date.now() - started) / 1000
    return {
      done: formatBytes(done),
      size: formatBytes(total),
      rate: seconds > 0 ? `${formatBytes(done / seconds)}/s` : '-',
    }
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {done} of {size} | {rate} | ETA {eta_formatted}`,
      stream: io.stderr as NodeJS.WritableStream,
      hideCursor: true,
      etaBuffer: 50,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic
  )
  bar.start(total, 0, payload(0))
  return {
    update: (done) => bar.update(Math.min(done, total), payload(done)),
    setTotal: (t) => {
      total = Math.max(1, t)
      bar.setTotal(total)
    },
    stop: () => {
      bar.update(total, payload(total))
      bar.stop()
    },
  }
}

function lineProgress(io: Io, label: string, initialTotal: number): Progress {
  const started = Date.now()
  let total = Math.max(1, initialTotal)
  let lastStep = 0
  let lastAt = started
  return {
    update(done) {
      const ratio = Math.min(1, done / total)
      const step = Math.floor(ratio * 10)
      const now = Date.now()
      if (step <= lastStep && now - lastAt < 15_000) return
      if (ratio >= 1) return // the final line comes from stop()
      lastStep = Math.max(step, lastStep)
      lastAt = now
      const seconds = (now - started) / 1000
      const rate = done / Math.max(seconds, 1e-3)
      const eta = rate > 0 ? (total - done) / rate : NaN
      io.stderr.write(
        `${label}: ${Math.floor(ratio * 100)}% (${formatBytes(done)} of ${formatBytes(total)}, ${formatBytes(rate)}/s, ETA ${formatDuration(eta)})\n`
      )
    },
    setTotal: (t) => {
      total = Math.max(1, t)
    },
    stop() {},
  }
}

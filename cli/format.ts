/**
 * Human-readable numbers, sizes, times and tables for the CLI's output.
 * @module
 */

export { formatBytes, formatDuration } from '../core/format.js'

/** `just now`, `12s ago`, `5m ago`, `3h ago`, `2d ago`. */
export function formatAgo(iso: string, now: Date): string {
  const seconds = (now.getTime() - Date.parse(iso)) / 1000
  if (!Number.isFinite(seconds)) return iso
  if (seconds < 2) return 'just now'
  if (seconds < 60) return `${Math.floor(seconds)}s ago`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`
  return `${Math.floor(seconds / 86_400)}d ago`
}

/** Local wall-clock time, `14:03:27`, for lines printed while following a run. */
export function formatClock(date: Date): string {
  return date.toTimeString().slice(0, 8)
}

export const formatPercent = (ratio: number) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : '-')
export const formatNumber = (n: number | undefined | null, digits = 2) =>
  n === undefined || n === null || !Number.isFinite(n) ? '-' : n.toFixed(digits)

/** Cuts text to `width` characters, with `…` where it was cut. */
export function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`
}

/** Left-aligned columns, two spaces apart, header first; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

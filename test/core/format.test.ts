/** Sizes and durations as progress lines, epoch lines and the CLI print them. */
import { expect, it } from 'vitest'
import { formatBytes, formatDuration } from '../../core/format.js'

it('formats durations without a carry left unrounded (no "47 min 60 s")', () => {
  expect(formatDuration(4.24)).toBe('4.2 s')
  expect(formatDuration(9.96)).toBe('10 s')
  expect(formatDuration(45.4)).toBe('45 s')
  expect(formatDuration(59.6)).toBe('1 min 0 s')
  expect(formatDuration(200)).toBe('3 min 20 s')
  expect(formatDuration(2879.6)).toBe('48 min 0 s')
  expect(formatDuration(3599.7)).toBe('1 h 0 min')
  expect(formatDuration(7500)).toBe('2 h 5 min')
  expect(formatDuration(Number.NaN)).toBe('?')
  expect(formatDuration(-1)).toBe('?')
})

it('formats sizes in powers of 1000', () => {
  expect(formatBytes(999)).toBe('999 B')
  expect(formatBytes(1200)).toBe('1.2 kB')
  expect(formatBytes(120_000_000)).toBe('120 MB')
  expect(formatBytes(Number.POSITIVE_INFINITY)).toBe('?')
})

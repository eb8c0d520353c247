/** The one progress wrapper: plain lines by time and by percent steps, sizes for bytes, a last line at the end. */
import { expect, it } from 'vitest'
import { createProgress } from '../../core/progress.js'

/** A clock the test moves by hand, and the lines written. */
function harness() {
  let now = 1_000_000
  const lines: string[] = []
  return {
    lines,
    clock: () => now,
    advance: (ms: number) => {
      now += ms
    },
    write: (l: string) => void lines.push(l),
  }
}

it('writes a line when logEverySeconds have passed, with the figures given, and one at the end', () => {
  const h = harness()
  const bar = createProgress({ label: 'epoch 1/2', total: 100, tty: false, logEverySeconds: 30, ...h })
  h.advance(10_000)
  bar.update(10, { loss: 1.23456 })
  expect(h.lines).toEqual([]) // 10 s < 30 s
  h.advance(25_000)
  bar.update(50, { loss: 1.5 })
  expect(h.lines).toEqual(['epoch 1/2 50/100 (50.0%)  elapsed 35 s  eta 35 s  loss 1.500'])
  h.advance(5_000)
  bar.update(60)
  bar.stop()
  expect(h.lines.at(-1)).toBe('epoch 1/2 60/100 (60.0%)  elapsed 40 s  eta 27 s')
})

it('writes on each percent step and once at completion, without repeating it on stop', () => {
  const h = harness()
  const bar = createProgress({ label: 'decode', total: 200, tty: false, everyPercent: 25, ...h })
  for (let done = 1; done <= 200; done++) {
    h.advance(10)
    bar.update(done)
  }
  bar.stop()
  expect(h.lines.map((l) => l.split('  ')[0])).toEqual([
    'decode 50/200 (25.0%)',
    'decode 100/200 (50.0%)',
    'decode 150/200 (75.0%)',
    'decode 200/200 (100.0%)',
  ])
  expect(h.lines.at(-1)).toContain('eta 0 s')
})

it('shows bytes as sizes with a rate, and follows a corrected total', () => {
  const h = harness()
  const bar = createProgress({ label: 'upload', total: 1_000_000, unit: 'bytes', tty: false, everyPercent: 50, ...h })
  h.advance(2000)
  bar.setTotal(4_000_000)
  bar.update(2_000_000)
  expect(h.lines).toEqual(['upload 2.0 MB/4.0 MB (50.0%)  elapsed 2.0 s  eta 2.0 s  1.0 MB/s'])
})

it('writes a line on stop even when nothing was reported before', () => {
  const h = harness()
  createProgress({ label: 'read', total: 0, tty: false, ...h }).stop()
  expect(h.lines).toEqual(['read 0/0 (100.0%)  elapsed 0.0 s  eta 0 s'])
})

import { readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { TrainMetrics } from '../../core/train-documents.js'
import { metricsDocument } from '../support/metrics.js'

const RESULTS = resolve(import.meta.dirname, '../../docs/results')
const committed = readdirSync(RESULTS).filter((f) => f.endsWith('.metrics.json'))

describe('TrainMetrics (metrics.json)', () => {
  it('finds the committed results', () => {
    expect(committed.length).toBeGreaterThan(0)
  })

  it.each(committed)('parses docs/results/%s, keeping every field in its order', (file) => {
    // GIVEN a metrics.json written by an earlier trainer (older ones lack later settings and fields)
    const raw: unknown = JSON.parse(readFileSync(resolve(RESULTS, file), 'utf8'))
    // WHEN
    const parsed = TrainMetrics.safeParse(raw)
    // THEN valid, and written back it is the same document
    expect(parsed.error).toBeUndefined()
    expect(JSON.stringify(parsed.data)).toBe(JSON.stringify(raw))
  })

  it('keeps fields it does not know, and rejects a document without its figures', () => {
    const doc = { ...metricsDocument(), laterField: { x: 1 } }
    expect(TrainMetrics.parse(doc)).toEqual(doc)
    const { history: _, ...withoutHistory } = metricsDocument()
    expect(TrainMetrics.safeParse(withoutHistory).success).toBe(false)
  })
})

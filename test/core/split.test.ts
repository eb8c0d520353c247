import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseLabelsCsv } from '../../core/labels.js'
import { sha256Hex, splitOf, splitOfDigest } from '../../core/split.js'
import { SHARED_DIR, sharedPresent } from '../support/shared.js'

const DATA = resolve(SHARED_DIR, 'data/utkface')
const hasData = sharedPresent('data/utkface/splits.csv', 'splitOf on UTKFace')

describe('splitOf', () => {
  it('maps the first 8 hex digits of the sha256, mod 10, to 0–7 train, 8 val, 9 test', () => {
    // 0x00000000 % 10 = 0, 0x00000008 = 8, 0x00000009 = 9, 0x0000000a = 10 → 0
    expect(splitOfDigest(`00000000${'f'.repeat(56)}`)).toBe('train')
    expect(splitOfDigest(`00000008${'f'.repeat(56)}`)).toBe('val')
    expect(splitOfDigest(`00000009${'f'.repeat(56)}`)).toBe('test')
    expect(splitOfDigest(`0000000a${'f'.repeat(56)}`)).toBe('train')
    expect(splitOfDigest(`ffffffff${'0'.repeat(56)}`)).toBe('train') // 4294967295 % 10 = 5
    expect(splitOfDigest(`fffffff8${'0'.repeat(56)}`)).toBe('val') // 4294967288 % 10 = 8
    expect(splitOfDigest(`fffffff9${'0'.repeat(56)}`)).toBe('test')
  })

  it('returns the digest it used', () => {
    const bytes = Buffer.from('hello')
    const { split, sha256 } = splitOf(bytes)
    expect(sha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824')
    expect(sha256).toBe(sha256Hex(bytes))
    expect(split).toBe(splitOfDigest(sha256))
  })

  it('gives identical bytes the same split whatever they are called', () => {
    const a = new Uint8Array([1, 2, 3])
    expect(splitOf(a)).toEqual(splitOf(Buffer.from([1, 2, 3])))
  })
})

describe.skipIf(!hasData)('splitOf on UTKFace (splits.csv)', () => {
  it('matches the split and sha256 of 300 files spread over the list, quirky names included', async () => {
    const text = await readFile(join(DATA, 'splits.csv'), 'utf8')
    const rows = text.trim().split('\n').slice(1)
    expect(rows).toHaveLength(23_708)
    // the same file read as a labels.csv: every row gives a label
    expect(parseLabelsCsv(text).rows).toBe(23_708)
    const step = Math.floor(rows.length / 300)
    const quirks = ['24_0_1_20170116220224657 .jpg', '55_0_0_20170116232725357jpg', '39_1_20170116174525125.jpg']
    const sample = [
      ...Array.from({ length: 300 }, (_, i) => rows[i * step]!),
      ...rows.filter((r) => quirks.some((q) => r.startsWith(q))),
    ]
    expect(sample).toHaveLength(303)
    const seen = new Set<string>()
    for (const row of sample) {
      const [filename, , , , sha256, split] = row.split(',')
      const bytes = await readFile(join(DATA, 'UTKFace', filename!))
      expect(splitOf(bytes), filename).toEqual({ split, sha256 })
      seen.add(split!)
    }
    expect([...seen].sort()).toEqual(['test', 'train', 'val'])
  })
})

import { describe, expect, it } from 'vitest'
import { dedupeTraining, type DedupeItem } from '../../trainer/dedupe.js'

const item = (
  name: string,
  content: string,
  age: number,
  gender: 0 | 1,
  split: DedupeItem['split'] = 'train'
): DedupeItem => ({
  name,
  bytes: new TextEncoder().encode(content),
  label: { age, gender },
  split,
})

describe('dedupeTraining', () => {
  it('merges identical training images into one with the median age', () => {
    const items = [item('a', 'x', 20, 0), item('b', 'x', 30, 0), item('c', 'x', 31, 0), item('d', 'y', 50, 1)]
    const { items: out, report } = dedupeTraining(items)
    expect(out.map((i) => [i.name, i.label.age])).toEqual([
      ['a', 30],
      ['d', 50],
    ])
    expect(report).toEqual({ groups: 1, removed: 2, ageConflicts: 1, genderConflicts: 0 })
  })

  it('drops a group whose genders disagree and keeps agreeing duplicates as one', () => {
    const items = [item('a', 'x', 20, 0), item('b', 'x', 20, 1), item('c', 'z', 40, 1), item('d', 'z', 40, 1)]
    const { items: out, report } = dedupeTraining(items)
    expect(out.map((i) => i.name)).toEqual(['c'])
    expect(out[0]!.label.age).toBe(40)
    expect(report).toEqual({ groups: 2, removed: 3, ageConflicts: 0, genderConflicts: 1 })
  })

  it('never touches validation or test items', () => {
    const items = [
      item('a', 'x', 20, 0, 'test'),
      item('b', 'x', 30, 1, 'test'),
      item('c', 'v', 5, 0, 'val'),
      item('d', 'v', 6, 0, 'val'),
    ]
    const { items: out, report } = dedupeTraining(items)
    expect(out).toEqual(items)
    expect(report.groups).toBe(0)
  })

  it('uses the loader’s sha256 when given', () => {
    const a = { ...item('a', 'p', 20, 0), sha256: 'same' }
    const b = { ...item('b', 'q', 22, 0), sha256: 'same' }
    expect(dedupeTraining([a, b]).items.map((i) => i.label.age)).toEqual([21])
  })
})

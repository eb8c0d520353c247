/**
 * Label cleaning for the training split: byte-identical images are one example, not several.
 *
 * UTKFace holds 375 groups of byte-identical files; in 205 the ages disagree and in 40 the genders do. Inside the
 * training split each group becomes one item: the first by path, with the median of the group's ages (rounded
 * to whole years); a group whose genders disagree is dropped, since no label can be trusted. Validation and test
 * items are never touched, so every reported figure stays on the shared split as it is.
 * @module
 */
import { sha256Hex } from '../core/split.js'
import type { DedupeReport } from '../core/train-documents.js'

export interface DedupeItem {
  readonly name: string
  readonly bytes: Uint8Array
  readonly label: { readonly age: number; readonly gender: 0 | 1; readonly race?: number }
  readonly split: 'train' | 'val' | 'test'
  readonly sha256?: string
}

const medianOf = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = (s.length - 1) / 2
  return (s[Math.floor(mid)]! + s[Math.ceil(mid)]!) / 2
}

export function dedupeTraining<T extends DedupeItem>(items: readonly T[]): { items: T[]; report: DedupeReport } {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    if (item.split !== 'train') continue
    const key = item.sha256 ?? sha256Hex(item.bytes)
    const group = groups.get(key)
    if (group) group.push(item)
    else groups.set(key, [item])
  }
  const replace = new Map<T, T | null>()
  const report = { groups: 0, removed: 0, ageConflicts: 0, genderConflicts: 0 }
  for (const group of groups.values()) {
    if (group.length < 2) continue
    report.groups++
    const [first, ...rest] = group
    if (new Set(group.map((i) => i.label.gender)).size > 1) {
      report.genderConflicts++
      for (const item of group) replace.set(item, null)
      report.removed += group.length
      continue
    }
    const ages = group.map((i) => i.label.age)
    let keep = first!
    if (new Set(ages).size > 1) {
      report.ageConflicts++
      keep = { ...first!, label: { ...first!.label, age: Math.round(medianOf(ages)) } }
    }
    replace.set(first!, keep)
    for (const item of rest) replace.set(item, null)
    report.removed += rest.length
  }
  const out: T[] = []
  for (const item of items) {
    const r = replace.get(item)
    if (r === undefined) out.push(item)
    else if (r !== null) out.push(r)
  }
  return { items: out, report }
}

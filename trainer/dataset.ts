/**
 * Loads a labelled dataset into memory: every image file's bytes, its label, its split and its sha256.
 *
 * - Image files are recognised by extension (`.jpg`, `.jpeg`, `.png`, `.webp`, any case); other files (a
 *   README, a licence) are read past, not kept, not counted. An image file whose first bytes are not JPEG,
 *   PNG or WebP is counted `unreadable-image` as it streams by, without being kept ({@link datasetEntryFilter}).
 *   Images are not decoded here: `decode.ts` does that and counts undecodable ones as `unreadable-image`
 *   with {@link countSkip}.
 * - Labels come from a `labels.csv` when the dataset has one (the one nearest the root) and lists the image, by
 *   path relative to the csv, by full path or by base name; otherwise from the UTKFace file name. The csv is
 *   authoritative: an image whose csv row is bad is skipped for the row's reason, not labelled from its name.
 * - Items come in path order whatever the source's order, so a folder and its zip give the same dataset.
 * - Every kept entry is held until the end, because a `labels.csv` may come after the images in an archive
 *   stream; the trainer holds all image bytes in memory anyway (UTKFace: ~180 MB). The caps of `readEntries`
 *   (total uncompressed bytes, entry count) bound what that can be.
 * - The split comes from the bytes ({@link splitOf}): byte-identical images, even with different names or
 *   labels (UTKFace has 375 such groups), always share a split, so none leaks from train into val or test.
 *   Duplicates are kept, as the reference split counts them.
 * @module
 */
import {
  LabelsCsvError,
  baseName,
  isJunkPath,
  lookupCsvLabel,
  normalizePath,
  parseLabelsCsv,
  parseUtkFaceName,
  type Label,
  type LabelsCsv,
} from '../core/labels.js'
import { sniffImageFormat } from '../core/image-format.js'
import { splitOf, type Split } from '../core/split.js'
import { DatasetError, readEntries, type DatasetSource, type EntryFilter, type ReadOptions } from './dataset-source.js'

export interface DatasetItem {
  /** Path inside the dataset. */
  readonly name: string
  readonly bytes: Buffer
  readonly label: Label
  readonly split: Split
  readonly sha256: string
}

/** Skipped images by reason: label reasons (`bad-name`, ...), entry reasons (`too-large`, ...), `unreadable-image`. */
export type SkipCounts = Record<string, number>

export interface Dataset {
  readonly items: DatasetItem[]
  readonly skipped: SkipCounts
  /** The first {@link MAX_SKIPPED_EXAMPLES} skipped images, to show what went wrong. */
  readonly skippedExamples: Array<{ name: string; reason: string }>
  /** `total` image files seen = `used` + all skipped; `train + val + test = used`. */
  readonly counts: { total: number; used: number; train: number; val: number; test: number }
  /** The `labels.csv` used, with its rows that gave no label; absent when labels came from file names. */
  readonly labelsCsv?: { name: string; rows: number; rejected: LabelsCsv['rejected'] }
}

export const MAX_SKIPPED_EXAMPLES = 20

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'] as const

export function isImageName(name: string): boolean {
  const n = name.toLowerCase()
  return IMAGE_EXTENSIONS.some((ext) => n.endsWith(ext))
}

export function isLabelsCsvName(name: string): boolean {
  return baseName(name).toLowerCase() === 'labels.csv'
}

/** Adds one skipped image to the counts, and to the examples while there are fewer than the cap. */
export function countSkip(dataset: Pick<Dataset, 'skipped' | 'skippedExamples'>, name: string, reason: string): void {
  dataset.skipped[reason] = (dataset.skipped[reason] ?? 0) + 1
  if (dataset.skippedExamples.length < MAX_SKIPPED_EXAMPLES) dataset.skippedExamples.push({ name, reason })
}

export type LoadOptions = Pick<ReadOptions, 'maxEntryBytes' | 'onProgress' | 'maxTotalBytes' | 'maxEntries' | 'tempDir'>

/**
 * Keeps images whose first bytes are JPEG, PNG or WebP and the `labels.csv`; an image named file that is
 * none of these is `unreadable-image` at once, and every other file is read past: neither is held in memory.
 */
export const datasetEntryFilter: EntryFilter = (name, head) => {
  if (isLabelsCsvName(name)) return 'keep'
  if (!isImageName(name)) return 'ignore'
  return sniffImageFormat(head) ? 'keep' : 'unreadable-image'
}

/**
 * Reads, labels and splits a dataset.
 * @throws DatasetError when the source cannot be read or its `labels.csv` has no usable header.
 */
export async function loadDataset(source: DatasetSource, options: LoadOptions = {}): Promise<Dataset> {
  const skipped: SkipCounts = {}
  const skippedExamples: Dataset['skippedExamples'] = []
  const tally = { skipped, skippedExamples }
  let total = 0
  const images: Array<{ name: string; bytes: Buffer }> = []
  let csvEntry: { name: string; bytes: Buffer } | undefined

  const entries = readEntries(source, {
    ...options,
    filter: datasetEntryFilter,
    onSkip: (name, reason) => {
      // only images count: an oversized video or a symlinked README is not a lost training example
      if (!isImageName(name) || isJunkPath(name)) return
      total++
      countSkip(tally, name, reason)
    },
  })
  for await (const entry of entries) {
    if (isLabelsCsvName(entry.name)) {
      if (!csvEntry || depth(entry.name) < depth(csvEntry.name)) csvEntry = entry
    } else if (isImageName(entry.name)) {
      images.push(entry)
    }
  }

  let csv: LabelsCsv | undefined
  let csvDir = ''
  if (csvEntry) {
    try {
      csv = parseLabelsCsv(csvEntry.bytes)
    } catch (cause) {
      if (!(cause instanceof LabelsCsvError)) throw cause
      throw new DatasetError('bad-labels-csv', `${csvEntry.name}: ${cause.message}`, { cause })
    }
    csvDir = csvEntry.name.slice(0, csvEntry.name.lastIndexOf('/') + 1)
  }

  const items: DatasetItem[] = []
  const counts = { total: 0, used: 0, train: 0, val: 0, test: 0 }
  // path order, not archive order: the same files give the same dataset (and seeded shuffles) from any source
  images.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const { name, bytes } of images) {
    total++
    const found = csv && lookupCsvLabel(csv, name, csvDir)
    const result = found ?? parseUtkFaceName(name)
    if ('reason' in result) {
      countSkip(tally, name, result.reason)
      continue
    }
    const { split, sha256 } = splitOf(bytes)
    items.push({ name: normalizePath(name), bytes, label: result.label, split, sha256 })
    counts[split]++
  }
  counts.total = total
  counts.used = items.length
  return {
    items,
    skipped,
    skippedExamples,
    counts,
    ...(csvEntry && csv ? { labelsCsv: { name: csvEntry.name, rows: csv.rows, rejected: csv.rejected } } : {}),
  }
}

function depth(path: string): number {
  return path.split('/').length
}

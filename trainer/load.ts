/**
 * Reads a dataset for training, with progress, into the items and description {@link train} takes.
 * @module
 */
import { basename, isAbsolute, relative } from 'node:path'
import { loadDataset, type LoadOptions } from './dataset.js'
import type { DatasetSource } from './dataset-source.js'
import { createProgress } from '../core/progress.js'
import type { DatasetInfo } from '../core/train-documents.js'
import type { TrainItem } from './train-types.js'

/**
 * How a dataset path is written into metrics.json and the report, which get committed and shared: relative to
 * the working directory when it is inside it or beside it (`../shared/data/utkface/UTKFace`), else its base
 * name. Never this machine's absolute path.
 */
export function portablePath(path: string, cwd = process.cwd()): string {
  if (!isAbsolute(path)) return path
  const rel = relative(cwd, path)
  if (rel === '') return '.'
  return isAbsolute(rel) || rel.startsWith('../..') ? basename(path) : rel
}

export async function loadDatasetForTraining(
  source: DatasetSource,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  limits: Pick<LoadOptions, 'maxTotalBytes' | 'maxEntries'> = {}
): Promise<{ items: TrainItem[]; dataset: DatasetInfo }> {
  const start = performance.now()
  const label = 'path' in source ? source.path : source.name
  let bar: ReturnType<typeof createProgress> | undefined
  const loaded = await loadDataset(source, {
    ...limits,
    onProgress: (read, total) => {
      if (!total) return
      bar ??= createProgress({ label: 'read', total, unit: 'bytes', write: log })
      bar.update(read)
    },
  })
  bar?.stop()
  const { counts, skipped } = loaded
  log(
    `dataset ${label}: ${counts.used} labelled images of ${counts.total} (train ${counts.train}, val ${counts.val}, test ${counts.test})` +
      (Object.keys(skipped).length ? `, skipped ${JSON.stringify(skipped)}` : '')
  )
  return {
    items: loaded.items,
    dataset: {
      source: 'path' in source ? portablePath(source.path) : label,
      counts,
      skipped,
      skippedExamples: loaded.skippedExamples,
      loadSeconds: (performance.now() - start) / 1000,
    },
  }
}

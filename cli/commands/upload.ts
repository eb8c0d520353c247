/**
 * `agegender upload <folder|archive>`: puts a dataset at `datasets/<name>.<ext>`, which starts a training run.
 *
 * A folder is packed into a `.tar.gz` on the fly (`pack.ts`); an archive is sent as it is. Either way the body
 * streams through lib-storage's multipart `Upload`, so size is no limit and memory stays flat. The run id is
 * the trigger's: `runIdFor(key, versionId ?? ETag)` of the stored object, as `functions/trigger/plan.ts`
 * computes it from the S3 event.
 * @module
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { DATASET_PREFIX, DATASET_SUFFIXES, readRun, runIdFor } from '../../core/runs.js'
import { DatasetError, readEntries } from '../../trainer/dataset-source.js'
import { isImageName } from '../../trainer/dataset.js'
import { numberFlag, stringFlag, type Command } from '../command.js'
import type { S3Context } from '../context.js'
import { formatBytes, formatDuration } from '../format.js'
import { println, UsageError, type Io } from '../io.js'
import { listFolder, packFolder, tarSize } from '../pack.js'
import { createProgress } from '../../core/progress.js'
import { followRun } from './status.js'

const MiB = 1024 * 1024
/** Tolerance between this machine's clock and the trigger's (on AWS, Lambda's). */
const CLOCK_SKEW_MS = 2000

export const uploadCommand: Command = {
  name: 'upload',
  args: '<folder|archive> [--name N] [--follow]',
  summary: 'upload a dataset (a folder is packed into .tar.gz on the fly); prints the run it starts',
  help: `  --name N      dataset name: the key is datasets/N.tar.gz (default: the folder or archive name)
  --follow, -f  then follow the run until it ends (as status --follow; exit 0 succeeded, 1 failed)
  --timeout S   give up following after S seconds (exit 1); without a run after 120 s it gives up anyway
  --part-size MiB  multipart part size (default 8)

  Archives: .zip, .tar, .tar.gz, .tgz. Images are UTKFace-named (age_gender_race_date.jpg) or listed in a
  labels.csv; see the trainer's README.`,
  options: {
    name: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
    'part-size': { type: 'string' },
    timeout: { type: 'string' },
  },
  async run(ctx) {
    const [input, ...rest] = ctx.positionals
    if (input === undefined || rest.length > 0) throw new UsageError('upload takes one folder or archive')
    const s3 = ctx.s3()
    const result = await uploadDataset(s3, resolve(ctx.io.cwd, input), ctx.io, {
      ...(stringFlag(ctx, 'name') !== undefined ? { name: stringFlag(ctx, 'name')! } : {}),
      partSize: Math.max(5, numberFlag(ctx, 'part-size', 8)) * MiB,
    })
    if (!ctx.values['follow']) return 0
    println(ctx.io.stdout)
    const timeout = ctx.values['timeout'] === undefined ? Infinity : numberFlag(ctx, 'timeout', 1)
    return followRun(s3.store, result.runId, ctx.io, { intervalSeconds: 2, timeoutSeconds: timeout })
  },
}

export interface UploadOptions {
  /** Dataset name. @default - the folder's name, or the archive's without its extension */
  readonly name?: string
  /** @default 8 MiB */
  readonly partSize?: number
}

export interface UploadResult {
  readonly key: string
  readonly bytes: number
  /** What the trigger names the object version by: the version id, else the ETag. */
  readonly version: string
  readonly runId: string
}

/**
 * Uploads a folder or an archive as a dataset and returns the run it starts.
 * @example
 * const { runId } = await uploadDataset(openS3({}, process.env), 'data/UTKFace', processIo())
 */
export async function uploadDataset(
  s3: S3Context,
  path: string,
  io: Io,
  options: UploadOptions = {}
): Promise<UploadResult> {
  const info = await stat(path).catch(() => undefined)
  if (!info) throw new UsageError(`no such file or folder: ${path}`)
  let body: Readable
  let key: string
  let estimate: number
  /** For a folder: the compressed size, extrapolated from how well the part packed so far compressed. */
  let reestimate: (() => number | undefined) | undefined
  if (info.isDirectory()) {
    const files = await listFolder(path)
    if (files.length === 0) throw new UsageError(`${path} holds no files to upload`)
    if (!files.some((f) => isImageName(f.name)))
      throw new UsageError(`${path} holds no images (${IMAGE_HINT}): nothing to train on, not uploaded`)
    key = datasetKey(options.name ?? basename(path), '.tar.gz')
    estimate = tarSize(files)
    println(io.stdout, `packing ${files.length} files (${formatBytes(estimate)}) from ${path} into ${s3.uri(key)}`)
    const packed = packFolder(files)
    body = packed.stream
    const tarTotal = estimate
    reestimate = () =>
      packed.tarBytes() > 0 ? Math.round((tarTotal * packed.gzipBytes()) / packed.tarBytes()) : undefined
  } else {
    const suffix = DATASET_SUFFIXES.find((s) => path.toLowerCase().endsWith(s))
    if (!info.isFile() || suffix === undefined) {
      throw new UsageError(`${path}: upload a folder or a ${DATASET_SUFFIXES.join(' / ')} archive`)
    }
    key = datasetKey(options.name ?? basename(path).slice(0, -suffix.length), suffix)
    await refuseImageless(path)
    estimate = info.size
    println(io.stdout, `uploading ${path} (${formatBytes(info.size)}) to ${s3.uri(key)}`)
    body = createReadStream(path)
  }

  const started = Date.now()
  const progress = createProgress({
    label: 'upload',
    total: estimate,
    unit: 'bytes',
    stream: io.stderr,
    everyPercent: 10,
    logEverySeconds: 15,
  })
  const upload = new Upload({
    client: s3.client,
    params: { Bucket: s3.bucket, Key: key, Body: body, ContentType: contentTypeFor(key) },
    partSize: options.partSize ?? 8 * MiB,
    queueSize: 4,
    // A failed upload must not leave invisible (and, on AWS, billed) parts behind.
    leavePartsOnError: false,
  })
  let sent = 0
  upload.on('httpUploadProgress', (p) => {
    sent = Math.max(sent, p.loaded ?? 0)
    const total = reestimate?.()
    if (total !== undefined && total > sent) progress.setTotal(total)
    progress.update(sent)
  })
  let out: Awaited<ReturnType<typeof upload.done>>
  try {
    out = await upload.done()
  } finally {
    progress.setTotal(Math.max(sent, 1))
    progress.stop()
  }
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }))
  const bytes = head.ContentLength ?? sent
  // As the trigger does (plan.ts): the version id when the bucket keeps versions, else the ETag without quotes.
  const versionId =
    nonEmpty(out.VersionId === 'null' ? undefined : out.VersionId) ??
    nonEmpty(head.VersionId === 'null' ? undefined : head.VersionId)
  const etag = nonEmpty(out.ETag?.replace(/"/g, '')) ?? nonEmpty(head.ETag?.replace(/"/g, ''))
  const version = versionId ?? etag
  if (version === undefined) throw new Error(`S3 returned neither a version id nor an ETag for ${s3.uri(key)}`)
  const runId = runIdFor(key, version)
  const seconds = (Date.now() - started) / 1000
  println(io.stdout, `uploaded ${s3.uri(key)}: ${formatBytes(bytes)} in ${formatDuration(seconds)}`)
  // The trigger may already have queued this upload's run: only a run older than the upload is a repeat.
  const existing = await readRun(s3.store, runId).catch(() => undefined)
  if (existing && Date.parse(existing.createdAt) < started - CLOCK_SKEW_MS) {
    println(
      io.stdout,
      `these exact bytes were uploaded before: run ${runId} exists (${existing.state}), no new run starts`
    )
  } else {
    println(io.stdout, `run ${runId} starts now`)
  }
  println(io.stdout, `  follow it:  agegender status ${runId} --follow`)
  return { key, bytes, version, runId }
}

const IMAGE_HINT = '.jpg, .jpeg, .png or .webp files'

/**
 * Refuses an archive that is unreadable or holds no image, before anything is uploaded: reads up to its first
 * image entry (usually near the start), keeping nothing.
 */
async function refuseImageless(path: string): Promise<void> {
  try {
    for await (const _ of readEntries({ path }, { filter: (name) => (isImageName(name) ? 'keep' : 'ignore') })) return
  } catch (err) {
    if (err instanceof DatasetError) throw new UsageError(`${err.message}: not uploaded`)
    throw err
  }
  throw new UsageError(`${path} holds no images (${IMAGE_HINT}): nothing to train on, not uploaded`)
}

/** `datasets/<name><suffix>`, refusing names that would land elsewhere or be unreadable as keys. */
export function datasetKey(name: string, suffix: string): string {
  const clean = name.trim()
  if (clean === '' || clean.includes('/') || clean.includes('\\') || clean.startsWith('.')) {
    throw new UsageError(`bad dataset name ${JSON.stringify(name)}: use letters, digits, - and _`)
  }
  return `${DATASET_PREFIX}${clean}${suffix}`
}

function contentTypeFor(key: string): string {
  if (key.endsWith('.zip')) return 'application/zip'
  if (key.endsWith('.tar')) return 'application/x-tar'
  return 'application/gzip'
}

const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v)

/**
 * Memory stays bounded whatever the archive holds (issue 9 item 3, issue 8 item 8): entries that are not
 * images are read past without being held, a zip stream goes to local disk, and caps on the entry count and
 * the total uncompressed bytes fail the read with a reason that names the cap.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import * as tar from 'tar-stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FolderStore } from '../../core/store/folder-store.js'
import { DatasetError, readEntries } from '../../trainer/dataset-source.js'
import { parseJobEnv, runJob } from '../../trainer/job-run.js'
import { loadDataset } from '../../trainer/dataset.js'
import { makeImages, tarBuffer, writeFolder, zipBuffer } from '../../support/images.js'
import { readRun } from '../../core/runs.js'

const MiB = 1024 * 1024
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataset-limits-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A tar.gz of `count` entries of `size` bytes each (`head` then zeros), written as it is made: tiny on disk. */
async function zeroBomb(file: string, count: number, size: number, head: Uint8Array = new Uint8Array()): Promise<void> {
  const body = Buffer.alloc(size)
  body.set(head)
  const pack = tar.pack()
  const written = pipeline(pack as unknown as NodeJS.ReadableStream, createGzip({ level: 1 }), createWriteStream(file))
  for (let i = 0; i < count; i++) {
    await new Promise<void>((done, fail) =>
      pack.entry({ name: `UTKFace/${20 + (i % 50)}_${i % 2}_0_2017010100000${i}.jpg.chip.jpg` }, body, (err) =>
        err ? fail(err) : done()
      )
    )
  }
  pack.finalize()
  await written
}

async function expectTooBig(promise: Promise<unknown>, reason: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(err).toBeInstanceOf(DatasetError)
  expect((err as DatasetError).code).toBe('too-big')
  expect((err as DatasetError).message).toMatch(reason)
}

describe('dataset memory bounds', () => {
  it('skips 24 entries of 20 MB of zeros named as photos as they stream, without holding them', {
    timeout: 120_000,
  }, async () => {
    // Prepare: 480 MB uncompressed, under 1 MB on disk
    const file = join(dir, 'zeros.tar.gz')
    await zeroBomb(file, 24, 20 * MiB)
    global.gc?.()
    const before = process.memoryUsage().rss
    let peak = before
    // Act
    const d = await loadDataset(
      { stream: createReadStream(file), name: 'datasets/zeros.tar.gz' },
      { onProgress: () => (peak = Math.max(peak, process.memoryUsage().rss)) }
    )
    peak = Math.max(peak, process.memoryUsage().rss)
    // Assess: every one reported, none kept; a generous bound (holding them would add 480 MB)
    expect(d.counts).toMatchObject({ total: 24, used: 0 })
    expect(d.skipped).toEqual({ 'unreadable-image': 24 })
    console.log(`zero bomb: 24 × 20 MB entries, RSS grew ${((peak - before) / MiB).toFixed(0)} MB`)
    expect(peak - before).toBeLessThan(200 * MiB)
  })

  it('fails with the cap on total bytes when entries that look like photos add up past it', async () => {
    const file = join(dir, 'jpeg-heads.tar.gz')
    await zeroBomb(file, 12, 1 * MiB, Buffer.from([0xff, 0xd8, 0xff, 0xe0]))
    await expectTooBig(
      loadDataset({ stream: createReadStream(file), name: 'datasets/big.tar.gz' }, { maxTotalBytes: 8 * MiB }),
      /datasets\/big\.tar\.gz: more than 8(\.0)? MiB uncompressed \(the cap on total bytes/
    )
    // under the cap it reads (and would leave decoding to decide)
    const ok = await loadDataset({ path: file }, { maxTotalBytes: 16 * MiB })
    expect(ok.counts.total).toBe(12)
  })

  it('fails with the cap on entries, for a tar, a zip and a folder', async () => {
    const images = await makeImages({ count: 12, size: 16, seed: 3 })
    const files = images.map((i) => ({ name: i.name, bytes: i.bytes }))
    await writeFile(join(dir, 'many.tar'), await tarBuffer(files))
    await writeFile(join(dir, 'many.zip'), await zipBuffer(files))
    const folder = await writeFolder(files, join(dir, 'many'))
    for (const path of [join(dir, 'many.tar'), join(dir, 'many.zip'), folder]) {
      await expectTooBig(loadDataset({ path }, { maxEntries: 10 }), /more than 10 entries \(the cap on entries/)
      expect((await loadDataset({ path }, { maxEntries: 12 })).counts.used).toBe(12)
    }
    // a folder's sizes are known up front: it fails before reading
    await expectTooBig(loadDataset({ path: folder }, { maxTotalBytes: 1000 }), /the cap on total bytes/)
  })

  it('spools a zip stream to local disk, not memory, and removes it afterwards', async () => {
    const images = await makeImages({ count: 5, size: 16, seed: 4 })
    const zip = await zipBuffer(images.map((i) => ({ name: i.name, bytes: i.bytes })))
    const spool = await mkdtemp(join(dir, 'spool-'))
    const names: string[] = []
    let during: string[] = []
    for await (const e of readEntries(
      {
        stream: (async function* () {
          yield zip
        })() as never,
        name: 'x.zip',
      },
      { tempDir: spool }
    )) {
      names.push(e.name)
      during = await readdir(spool)
    }
    expect(names).toHaveLength(5)
    expect(during).toHaveLength(1)
    expect(await readdir(spool)).toEqual([])
    // and the spool is capped too
    await expectTooBig(
      (async () => {
        for await (const _ of readEntries(
          {
            stream: (async function* () {
              yield zip
            })() as never,
            name: 'x.zip',
          },
          { tempDir: spool, maxTotalBytes: 100 }
        ))
          void _
      })(),
      /cap on total bytes/
    )
    expect(await readdir(spool)).toEqual([])
  })

  it('fails the job with the cap as its reason when DATASET_MAX_ENTRIES is exceeded', async () => {
    const store = new FolderStore(join(dir, 'store'))
    const images = await makeImages({ count: 6, size: 16, seed: 5 })
    await store.put(
      'datasets/six.tar.gz',
      await tarBuffer(
        images.map((i) => ({ name: i.name, bytes: i.bytes })),
        { gzip: true }
      )
    )
    const env = parseJobEnv({
      STORE_BUCKET: 'b',
      DATASET_KEY: 'datasets/six.tar.gz',
      RUN_ID: 'capped',
      DATASET_MAX_ENTRIES: '5',
      TRAIN_EPOCHS: '1',
    })
    expect(env.datasetLimits).toEqual({ maxEntries: 5 })
    const outcome = await runJob({ env, store, backend: { name: 'cpu', description: 'test' }, log: () => {} })
    expect(outcome).toBe('failed')
    const status = await readRun(store, 'capped')
    expect(status?.state).toBe('failed')
    expect(status?.reason).toMatch(/datasets\/six\.tar\.gz: more than 5 entries \(the cap on entries/)
  })
})

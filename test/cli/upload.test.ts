import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import * as tar from 'tar-stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { S3Store } from '../../core/store/s3-store.js'
import { putJson } from '../../core/store/object-store.js'
import { parseS3Event, plan } from '../../functions/trigger/index.js'
import { main } from '../../cli/main.js'
import { gzipSync } from 'node:zlib'
import { makeImages, tarBuffer, writeFolder, zipBuffer } from '../../support/images.js'
import { useTestS3 } from '../support/s3-server.js'
import { captureIo } from './io.js'

const s3 = useTestS3('cli-upload')

describe('agegender upload', () => {
  let work: string
  let names: string[]
  const cli = async (...argv: string[]) => {
    const io = captureIo({ cwd: work })
    const code = await main([...argv, '--bucket', s3().bucket], io)
    return { code, out: io.stdoutText(), err: io.stderrText() }
  }
  /** The run id the trigger plans from the upload's S3 event. */
  const triggerRunId = (key: string) => {
    const [planned] = plan(parseS3Event({ Records: [s3().lastEventFor(key)] }).Records)
    if (planned?.action !== 'run') throw new Error(`the trigger would not start a run for ${key}`)
    return planned.run.runId
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-upload-'))
    const images = await makeImages({ count: 30, size: 32, seed: 4 })
    names = [...images.map((i) => `part1/${i.name}`), 'labels.csv'].sort()
    await writeFolder(
      [
        ...images.map((i) => ({ name: `part1/${i.name}`, bytes: i.bytes })),
        { name: 'labels.csv', bytes: Buffer.from('file,age,gender\n') },
        { name: '.DS_Store', bytes: Buffer.from('junk') },
        { name: '.cache/x.jpg', bytes: images[0]!.bytes },
      ],
      join(work, 'UTKFace')
    )
  })
  afterAll(() => rm(work, { recursive: true, force: true }))

  it('packs a folder into .tar.gz on the fly and prints the run the trigger will start', async () => {
    // Act
    const { code, out, err } = await cli('upload', 'UTKFace')
    // Assess
    expect(code, err).toBe(0)
    expect(out).toMatch(
      new RegExp(
        `packing ${names.length} files \\(.+\\) from .+UTKFace into s3://cli-upload/datasets/UTKFace\\.tar\\.gz`
      )
    )
    expect(out).toMatch(/uploaded s3:\/\/cli-upload\/datasets\/UTKFace\.tar\.gz: .+ in .+/)
    const runId = /run (\S+) starts now/.exec(out)?.[1]
    expect(runId).toBe(triggerRunId('datasets/UTKFace.tar.gz'))
    expect(out).toContain(`agegender status ${runId} --follow`)
    // the archive holds the folder's files (hidden ones left out), at their relative paths, byte for byte
    const body = await new S3Store({ bucket: s3().bucket, client: s3().client() }).get('datasets/UTKFace.tar.gz')
    const entries = await untar(Buffer.from(body!))
    expect([...entries.keys()].sort()).toEqual(names)
    expect(entries.get('labels.csv')?.toString()).toBe('file,age,gender\n')
  })

  it('uploads a large folder in parts, and still names the run as the trigger does', async () => {
    // Prepare: more than one 5 MiB part, incompressible (named as photos: a folder without images is refused)
    const big = await writeFolder([
      { name: 'a.jpg', bytes: randomBytes(4 * 1024 * 1024) },
      { name: 'b.jpg', bytes: randomBytes(3 * 1024 * 1024) },
    ])
    try {
      const { code, out, err } = await cli('upload', big, '--name', 'large', '--part-size', '5')
      expect(code, err).toBe(0)
      expect(/run (\S+) starts now/.exec(out)?.[1]).toBe(triggerRunId('datasets/large.tar.gz'))
      // not a terminal: plain progress lines (one per part sent), not a redrawn bar
      expect(err).toMatch(
        /^upload [\d.]+ [kMG]?B\/[\d.]+ [kMG]?B \([\d.]+%\) {2}elapsed .+ {2}eta .+ {2}[\d.]+ [kMG]?B\/s$/m
      )
    } finally {
      await rm(big, { recursive: true, force: true })
    }
  })

  it('uploads an archive as it is, under its own extension', async () => {
    const images = await makeImages({ count: 3, size: 32, seed: 5 })
    await writeFile(join(work, 'faces.v2.zip'), await zipBuffer(images.map((i) => ({ name: i.name, bytes: i.bytes }))))
    const { code, out } = await cli('upload', 'faces.v2.zip')
    expect(code).toBe(0)
    expect(out).toContain('to s3://cli-upload/datasets/faces.v2.zip')
    expect(/run (\S+) starts now/.exec(out)?.[1]).toBe(triggerRunId('datasets/faces.v2.zip'))
  })

  it('says so when the same bytes were uploaded before (no new run)', async () => {
    const first = await cli('upload', 'faces.v2.zip', '--name', 'again')
    const runId = /run (\S+) starts now/.exec(first.out)![1]!
    const store = new S3Store({ bucket: s3().bucket, client: s3().client() })
    const old = '2024-01-01T00:00:00.000Z'
    await putJson(store, `runs/${runId}/status.json`, {
      runId,
      state: 'succeeded',
      dataset: { key: 'datasets/again.zip' },
      createdAt: old,
      updatedAt: old,
    })
    const second = await cli('upload', 'faces.v2.zip', '--name', 'again')
    expect(second.code).toBe(0)
    expect(second.out).toContain(
      `these exact bytes were uploaded before: run ${runId} exists (succeeded), no new run starts`
    )
  })

  it('refuses what is not a dataset, with exit code 2', async () => {
    await writeFile(join(work, 'notes.txt'), 'hello')
    await writeFolder([{ name: 'empty/' }], work)
    await writeFolder([{ name: 'docs/README.md', bytes: Buffer.from('# no faces') }], work)
    await writeFile(join(work, 'empty.zip'), await zipBuffer([]))
    await writeFile(
      join(work, 'readme-only.tar.gz'),
      gzipSync(await tarBuffer([{ name: 'README.md', bytes: Buffer.from('# no faces') }]))
    )
    await writeFile(join(work, 'zero.tar.gz'), '')
    const cases: [string[], RegExp][] = [
      [['upload', 'notes.txt'], /upload a folder or a .zip \/ .tar \/ .tar.gz \/ .tgz archive/],
      [['upload', 'missing-folder'], /no such file or folder/],
      [['upload', 'empty'], /holds no files/],
      [
        ['upload', 'docs'],
        /docs holds no images \(.jpg, .jpeg, .png or .webp files\): nothing to train on, not uploaded/,
      ],
      [['upload', 'empty.zip'], /empty\.zip holds no images/],
      [['upload', 'readme-only.tar.gz'], /readme-only\.tar\.gz holds no images/],
      [['upload', 'zero.tar.gz'], /zero\.tar\.gz: .*not uploaded/],
      [['upload', 'UTKFace', '--name', '../x'], /bad dataset name/],
      [['upload'], /upload takes one folder or archive/],
    ]
    for (const [argv, message] of cases) {
      const { code, err } = await cli(...argv)
      expect(code, argv.join(' ')).toBe(2)
      expect(err).toMatch(message)
    }
    // nothing reached the bucket
    const keys = (await new S3Store({ bucket: s3().bucket }).list('datasets/')).map((o) => o.key)
    expect(keys.filter((k) => /docs|empty|readme-only|zero/.test(k))).toEqual([])
  })
})

async function untar(gz: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  const extract = tar.extract()
  Readable.from([gz]).pipe(createGunzip()).pipe(extract)
  for await (const entry of extract) {
    const chunks: Buffer[] = []
    for await (const c of entry) chunks.push(c as Buffer)
    files.set(entry.header.name, Buffer.concat(chunks))
  }
  return files
}

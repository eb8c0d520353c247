import { resolve } from 'node:path'
import { rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { countSkip, loadDataset, MAX_SKIPPED_EXAMPLES, type Dataset } from '../../trainer/dataset.js'
import { DatasetError } from '../../trainer/dataset-source.js'
import { corruptImage, makeImages, tarBuffer, writeFolder, zipBuffer, type ArchiveFile } from '../../support/images.js'
import { SHARED_DIR, sharedPresent } from '../support/shared.js'

const UTKFACE = resolve(SHARED_DIR, 'data/utkface/UTKFace')
const hasData = sharedPresent('data/utkface/UTKFace', 'loadDataset on UTKFace')

const folders: string[] = []
afterAll(async () => {
  for (const f of folders) await rm(f, { recursive: true, force: true })
})

async function folderOf(files: ArchiveFile[]): Promise<string> {
  const dir = await writeFolder(files)
  folders.push(dir)
  return dir
}

function invariants(d: Dataset): void {
  const skippedTotal = Object.values(d.skipped).reduce((a, b) => a + b, 0)
  expect(d.counts.used).toBe(d.items.length)
  expect(d.counts.total).toBe(d.counts.used + skippedTotal)
  expect(d.counts.train + d.counts.val + d.counts.test).toBe(d.counts.used)
  for (const split of ['train', 'val', 'test'] as const) {
    expect(d.items.filter((i) => i.split === split)).toHaveLength(d.counts[split])
  }
}

describe('loadDataset', () => {
  it('labels from file names, counts skipped images by reason and ignores other files', async () => {
    const images = await makeImages({ count: 5, size: 24, seed: 3 })
    const dup = images[0]!.bytes
    const files: ArchiveFile[] = [
      ...images.map((im, i) => ({ name: i % 2 ? `UTKFace/part/${im.name}` : im.name, bytes: im.bytes })),
      { name: 'UTKFace/39_1_20170116174525125.jpg.chip.jpg', bytes: images[1]!.bytes }, // no race: accepted
      { name: 'UTKFace/42_1_2_20170101.JPG', bytes: images[2]!.bytes },
      { name: 'UTKFace/43_0_1_20170101.webp', bytes: images[3]!.bytes },
      { name: 'UTKFace/44_0_1_20170101.PNG', bytes: images[4]!.bytes },
      { name: 'UTKFace/7_0_0_20170101.jpg', bytes: dup }, // same bytes as images[0], another label
      { name: 'UTKFace/8_1_0_20170101.jpg', bytes: corruptImage() }, // decoded (and rejected) later, not here
      { name: 'UTKFace/photo.jpg', bytes: dup },
      { name: 'UTKFace/130_0_0_20170101.jpg.chip.jpg', bytes: dup },
      { name: 'UTKFace/20_3_0_20170101.jpg.chip.jpg', bytes: dup },
      { name: 'UTKFace/20_1_7_20170101.jpg.chip.jpg', bytes: dup },
      { name: 'UTKFace/30_1_0_20170101.jpg', bytes: Buffer.alloc(5000) },
      { name: 'UTKFace/31_1_0_20170101.jpg', symlinkTo: images[0]!.name },
      { name: 'README.md', bytes: Buffer.from('# faces') },
      { name: 'UTKFace/notes.txt', bytes: Buffer.from('not an image') },
      { name: '__MACOSX/UTKFace/._20_1_0_20170101.jpg', bytes: Buffer.from('fork') },
      { name: 'UTKFace/._21_1_0_20170101.jpg', bytes: Buffer.from('fork') },
    ]
    const d = await loadDataset({ path: await folderOf(files) }, { maxEntryBytes: 4000 })
    invariants(d)
    expect(d.counts.total).toBe(17)
    expect(d.counts.used).toBe(11)
    expect(d.skipped).toEqual({
      'bad-name': 1,
      'age-out-of-range': 1,
      'bad-gender': 1,
      'bad-race': 1,
      'too-large': 1,
      'broken-link': 1,
    })
    expect(d.skippedExamples).toContainEqual({ name: 'UTKFace/photo.jpg', reason: 'bad-name' })
    expect(d.labelsCsv).toBeUndefined()
    const byName = new Map(d.items.map((i) => [i.name, i]))
    expect(byName.get('UTKFace/39_1_20170116174525125.jpg.chip.jpg')?.label).toEqual({ age: 39, gender: 1 })
    expect(byName.get('UTKFace/42_1_2_20170101.JPG')?.label).toEqual({ age: 42, gender: 1, race: 2 })
    expect(byName.get(`UTKFace/part/${images[1]!.name}`)?.label).toEqual({
      age: images[1]!.age,
      gender: images[1]!.gender,
      race: images[1]!.race,
    })
    // identical bytes share their split and digest whatever their names and labels
    const a = byName.get(images[0]!.name)!
    const b = byName.get('UTKFace/7_0_0_20170101.jpg')!
    expect([b.split, b.sha256]).toEqual([a.split, a.sha256])
    expect(b.label.age).toBe(7)
  })

  it('labels from a labels.csv anywhere in a tar.gz stream, the csv first, names as the fallback', async () => {
    const images = await makeImages({ count: 6, size: 24, seed: 4 })
    const csv = [
      'filename,age,gender,race',
      'imgs/a.png,33,1,2', // relative to the csv's folder
      'b.jpg,44,0,', // base name
      'data/imgs/c.jpg,200,0,', // full path, bad age: skipped, not labelled from anything else
      `${images[3]!.name},55,1,1`, // the csv beats the file name
      'gone.jpg,20,0,', // no such image: harmless
    ].join('\r\n')
    const files: ArchiveFile[] = [
      { name: 'data/imgs/a.png', bytes: images[0]!.bytes },
      { name: 'data/imgs/sub/b.jpg', bytes: images[1]!.bytes },
      { name: 'data/imgs/c.jpg', bytes: images[2]!.bytes },
      { name: `data/imgs/${images[3]!.name}`, bytes: images[3]!.bytes },
      { name: `data/imgs/${images[4]!.name}`, bytes: images[4]!.bytes }, // not in the csv: from its name
      { name: 'data/imgs/d.jpg', bytes: images[5]!.bytes }, // in neither
      { name: 'data/labels.csv', bytes: Buffer.from(csv) }, // after the images, as a stream may put it
      { name: 'data/deeper/labels.csv', bytes: Buffer.from('nonsense') }, // deeper: not used
    ]
    const tgz = await tarBuffer(files, { gzip: true })
    const d = await loadDataset({ stream: Readable.from([tgz]), name: 'upload.tgz' })
    invariants(d)
    expect(d.counts).toMatchObject({ total: 6, used: 4 })
    expect(d.skipped).toEqual({ 'age-out-of-range': 1, 'bad-name': 1 })
    expect(d.labelsCsv).toEqual({
      name: 'data/labels.csv',
      rows: 4,
      rejected: [{ line: 4, filename: 'data/imgs/c.jpg', reason: 'age-out-of-range' }],
    })
    const labels = Object.fromEntries(d.items.map((i) => [i.name, i.label]))
    expect(labels).toEqual({
      'data/imgs/a.png': { age: 33, gender: 1, race: 2 },
      'data/imgs/sub/b.jpg': { age: 44, gender: 0 },
      [`data/imgs/${images[3]!.name}`]: { age: 55, gender: 1, race: 1 },
      [`data/imgs/${images[4]!.name}`]: { age: images[4]!.age, gender: images[4]!.gender, race: images[4]!.race },
    })
  })

  it('gives the same dataset from a folder and a zip', async () => {
    const images = await makeImages({ count: 8, size: 24, seed: 5 })
    const files = images.map((im) => ({ name: `faces/${im.name}`, bytes: im.bytes }))
    const fromFolder = await loadDataset({ path: await folderOf(files) })
    const fromZip = await loadDataset({ stream: Readable.from([await zipBuffer(files)]), name: 'faces.zip' })
    expect(fromZip).toEqual(fromFolder)
    expect(fromFolder.counts.used).toBe(8)
  })

  it('rejects a labels.csv without the required columns with a DatasetError', async () => {
    const images = await makeImages({ count: 1, size: 24, seed: 6 })
    const dir = await folderOf([
      { name: images[0]!.name, bytes: images[0]!.bytes },
      { name: 'labels.csv', bytes: Buffer.from('file,years\nx.jpg,3\n') },
    ])
    const error = await loadDataset({ path: dir }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DatasetError)
    expect(error).toMatchObject({ code: 'bad-labels-csv' })
    expect((error as Error).message).toMatch(/labels\.csv.*missing age, gender/)
  })

  it('countSkip adds reasons later stages find and keeps at most 20 examples', () => {
    const tally: Pick<Dataset, 'skipped' | 'skippedExamples'> = { skipped: { 'bad-name': 2 }, skippedExamples: [] }
    for (let i = 0; i < 25; i++) countSkip(tally, `img${i}.jpg`, 'unreadable-image')
    expect(tally.skipped).toEqual({ 'bad-name': 2, 'unreadable-image': 25 })
    expect(tally.skippedExamples).toHaveLength(MAX_SKIPPED_EXAMPLES)
  })
})

describe('synthetic test images', () => {
  it('are deterministic from the seed, label themselves, and carry an age and gender signal', async () => {
    const a = await makeImages({ count: 12, size: 32, seed: 9 })
    const b = await makeImages({ count: 12, size: 32, seed: 9 })
    expect(b.map((i) => i.bytes)).toEqual(a.map((i) => i.bytes))
    expect((await makeImages({ count: 1, size: 32, seed: 10 }))[0]!.bytes).not.toEqual(a[0]!.bytes)
    const d = await loadDataset({ path: await folderOf(a) })
    expect(Object.fromEntries(d.items.map((i) => [i.name, i.label]))).toEqual(
      Object.fromEntries(a.map(({ name, age, gender, race }) => [name, { age, gender, race }]))
    )
    const sharp = (await import('sharp')).default
    const stats = await Promise.all(a.map((im) => sharp(im.bytes).stats()))
    const mean = (i: number) => stats[i]!.channels.reduce((s, c) => s + c.mean, 0) / 3
    const redMinusBlue = (i: number) => stats[i]!.channels[0]!.mean - stats[i]!.channels[2]!.mean
    const byAge = a.map((im, i) => ({ age: im.age, brightness: mean(i) })).sort((x, y) => x.age - y.age)
    expect(byAge.at(-1)!.brightness).toBeGreaterThan(byAge[0]!.brightness)
    for (const [i, im] of a.entries()) expect(Math.sign(redMinusBlue(i)), im.name).toBe(im.gender ? 1 : -1)
  })
})

describe.skipIf(!hasData)('loadDataset on UTKFace (reads ~180 MB)', () => {
  it('loads all 23,708 images with the README split counts and accepts the 3 without a race', async () => {
    const d = await loadDataset({ path: UTKFACE })
    expect(d.counts).toEqual({ total: 23_708, used: 23_708, train: 18_980, val: 2_370, test: 2_358 })
    expect(d.skipped).toEqual({})
    expect(
      d.items
        .filter((i) => i.label.race === undefined)
        .map((i) => i.name)
        .sort()
    ).toEqual([
      '39_1_20170116174525125.jpg.chip.jpg',
      '61_1_20170109142408075.jpg.chip.jpg',
      '61_1_20170109150557335.jpg.chip.jpg',
    ])
    // 375 groups of identical bytes hold 765 files (README): 390 repeats
    expect(new Set(d.items.map((i) => i.sha256)).size).toBe(23_708 - 390)
  })
})

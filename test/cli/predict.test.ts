/**
 * `agegender predict` against the real predict server (startPredictServer on loopback, reading folder stores
 * with real tiny models): the per-face table and JSON lines checked against the API's own answers, modes,
 * several images per request, files refused before sending, and the API's errors.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../../cli/main.js'
import { batches, MAX_IMAGES_PER_REQUEST, predictEndpoint } from '../../cli/commands/predict.js'
import { initEngine } from '../../core/engine/index.js'
import type { FaceAnswer, ImageAnswer } from '../../core/faces.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { startPredictServer, type PredictServer } from '../../functions/predict/server.js'
import { promote, saveTinyModel, TEST_CALIBRATION } from '../functions/predict/models.js'
import { makeImages } from '../../support/images.js'
import { squareDetector, squaresScene } from '../support/square-detector.js'
import { captureIo } from './io.js'

const listen = (server: Server) =>
  new Promise<string>((done) =>
    server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  )
const close = (server: Server) => new Promise((done) => server.close(done))

describe('agegender predict', () => {
  let work: string
  /** Calibrated model with the test detector (white squares are faces). */
  let api: PredictServer
  /** Nothing promoted: answers 503. */
  let empty: PredictServer

  beforeAll(async () => {
    await initEngine({ backend: 'wasm' })
    vi.spyOn(console, 'log').mockImplementation(() => {})
    work = await mkdtemp(join(tmpdir(), 'cli-predict-'))
    const store = new FolderStore(join(work, 'store'))
    await saveTinyModel(store, 'run-cli', 3, { ageInterval: TEST_CALIBRATION })
    await promote(store, 'run-cli')
    api = await startPredictServer({ store, port: 0, detector: async () => squareDetector })
    empty = await startPredictServer({ store: new FolderStore(join(work, 'empty')), port: 0 })
    const [a, b] = await makeImages({ count: 2, size: 32, seed: 9 })
    await writeFile(join(work, 'a.jpg'), a!.bytes)
    await writeFile(join(work, 'b.jpg'), b!.bytes)
    await writeFile(
      join(work, 'scene.jpg'),
      await squaresScene(160, 80, [
        { x: 10, y: 10, width: 40, height: 40 },
        { x: 90, y: 20, width: 50, height: 50 },
      ])
    )
    await writeFile(join(work, 'drawing.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
  })
  afterAll(async () => {
    await api?.close()
    await empty?.close()
    await rm(work, { recursive: true, force: true })
  })

  /** What the API answers for one file, asked directly. */
  async function apiAnswer(file: string, mode = 'auto'): Promise<ImageAnswer> {
    const res = await fetch(`${api.url}/predict?mode=${mode}`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: await readFile(join(work, file)),
    })
    expect(res.status).toBe(200)
    const { index: _index, ...image } = ((await res.json()) as { images: (ImageAnswer & { index: number })[] })
      .images[0]!
    return image
  }

  const percent = (f: FaceAnswer) =>
    `${((f.gender === 'female' ? f.genderProbability : 1 - f.genderProbability) * 100).toFixed(1)}%`

  it('prints one row per face, with age, calibrated range, gender, box and how it was found', async () => {
    const io = captureIo({ cwd: work, env: {} })
    const code = await main(['predict', 'scene.jpg', 'a.jpg', '--url', api.url], io)
    expect(code, io.stderrText()).toBe(0)
    const scene = await apiAnswer('scene.jpg')
    const a = await apiAnswer('a.jpg')
    expect(scene.faces).toHaveLength(2)
    expect(a).toMatchObject({ fellBack: true, faces: [{ method: 'whole-image' }] })
    const lines = io.stdoutText().trimEnd().split('\n')
    expect(lines[0]).toMatch(/^image\s+face\s+age\s+range\s+gender\s+box \(x y w h\)\s+found by$/)
    const rows = lines.slice(1, 4).map((l) => l.split(/\s{2,}/))
    const expectRow = (row: string[] | undefined, file: string, i: number, f: FaceAnswer, how: string) =>
      expect(row).toEqual([
        file,
        String(i),
        f.age.toFixed(1),
        `${f.ageRange!.low.toFixed(1)}–${f.ageRange!.high.toFixed(1)} (90%)`,
        `${f.gender} ${percent(f)}`,
        `${f.box.x} ${f.box.y} ${f.box.width} ${f.box.height}`,
        how,
      ])
    expectRow(rows[0], 'scene.jpg', 1, scene.faces[0]!, `detector ${scene.faces[0]!.score!.toFixed(2)}`)
    expectRow(rows[1], 'scene.jpg', 2, scene.faces[1]!, `detector ${scene.faces[1]!.score!.toFixed(2)}`)
    expectRow(rows[2], 'a.jpg', 1, a.faces[0]!, 'whole image (no face found)')
    expect(lines[4]).toBe('model run-cli · face detector test-white-squares · age ranges at 90%')
    expect(lines).toHaveLength(5)
  })

  it('prints one JSON line per image with --json, as the API answers, and passes --mode', async () => {
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'b.jpg', 'scene.jpg', '--json', '--mode', 'detect', '--url', api.url], io)).toBe(0)
    const lines = io
      .stdoutText()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines).toEqual([
      { file: 'b.jpg', ...(await apiAnswer('b.jpg', 'detect')), model: expect.objectContaining({ runId: 'run-cli' }) },
      {
        file: 'scene.jpg',
        ...(await apiAnswer('scene.jpg', 'detect')),
        model: expect.objectContaining({ runId: 'run-cli' }),
      },
    ])
    expect(lines[0]).toMatchObject({ mode: 'detect', fellBack: false, faces: [] })
  })

  it('says "no face found" for an image without faces in detect mode', async () => {
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'a.jpg', '--mode', 'detect', '--url', api.url], io)).toBe(0)
    expect(io.stdoutText().split('\n')[1]).toMatch(/^a\.jpg\s+-\s+no face found$/)
  })

  it('answers many images, several per request, in the order given', async () => {
    const files = Array.from({ length: MAX_IMAGES_PER_REQUEST + 3 }, (_, i) => (i % 2 ? 'a.jpg' : 'b.jpg'))
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', ...files, '--json', '--url', api.url], io)).toBe(0)
    const lines = io
      .stdoutText()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; faces: FaceAnswer[] })
    expect(lines.map((l) => l.file)).toEqual(files)
    const [a, b] = [await apiAnswer('a.jpg'), await apiAnswer('b.jpg')]
    for (const line of lines) expect(line.faces).toEqual((line.file === 'a.jpg' ? a : b).faces)
  })

  it('groups images into requests by count and bytes, a large file alone', () => {
    const sizes = (n: number, bytes: number) => Array.from({ length: n }, () => ({ bytes: new Uint8Array(bytes) }))
    expect([...batches(sizes(MAX_IMAGES_PER_REQUEST * 2 + 1, 10))].map((b) => b.length)).toEqual([
      MAX_IMAGES_PER_REQUEST,
      MAX_IMAGES_PER_REQUEST,
      1,
    ])
    const big = 3 * 1024 * 1024
    expect(
      [...batches([...sizes(1, 100), ...sizes(1, big), ...sizes(1, big), ...sizes(1, 100)])].map((b) =>
        b.map((i) => i.bytes.length)
      )
    ).toEqual([
      [100, big],
      [big, 100],
    ])
    expect([...batches(sizes(1, 6 * 1024 * 1024))]).toHaveLength(1)
  })

  it('refuses a file that is not JPEG, PNG or WebP before sending, answers the others, and exits 1', async () => {
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'drawing.svg', 'a.jpg', 'missing.jpg', '--url', api.url], io)).toBe(1)
    expect(io.stderrText()).toBe(
      'drawing.svg: not sent: the file is SVG, not JPEG, PNG or WebP\n' +
        `missing.jpg: cannot read: ENOENT: no such file or directory, open '${join(work, 'missing.jpg')}'\n`
    )
    expect(io.stdoutText()).toMatch(/\na\.jpg\s+1\s+/)
  })

  it('refuses an unknown --mode with a usage error', async () => {
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'a.jpg', '--mode', 'faces', '--url', api.url], io)).toBe(2)
    expect(io.stderrText()).toMatch(/--mode must be one of auto, detect, whole, got "faces"/)
  })

  it("finds the local system's predict API in .local/endpoints.json", async () => {
    await mkdir(join(work, '.local'), { recursive: true })
    await writeFile(join(work, '.local', 'endpoints.json'), JSON.stringify({ predictUrl: api.url }))
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'a.jpg', '--json'], io)).toBe(0)
    expect(JSON.parse(io.stdoutText())).toMatchObject({
      file: 'a.jpg',
      faces: [{ method: 'whole-image' }],
      model: { runId: 'run-cli' },
    })
    await rm(join(work, '.local'), { recursive: true })
  })

  it("reports the API's error and hint for each image, with exit 1", async () => {
    const io = captureIo({ cwd: work, env: { AGEGENDER_PREDICT_URL: empty.url } })
    expect(await main(['predict', 'a.jpg', 'b.jpg'], io)).toBe(1)
    const lines = io.stderrText().trimEnd().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(/^a\.jpg: HTTP 503: no model has been promoted yet: .* \(train a model and promote it/)
    expect(lines[1]).toMatch(/^b\.jpg: HTTP 503: /)
    expect(io.stdoutText()).toBe('')
  })

  it('says when nothing listens, with exit 1', async () => {
    const gone = createServer()
    const url = await listen(gone)
    await close(gone)
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'a.jpg', 'b.jpg', '--url', url], io)).toBe(1)
    const why = `no predict API at ${url}/predict (ECONNREFUSED): is \`npm start\` running? Or pass --url`
    expect(io.stderrText()).toBe(`a.jpg: ${why}\nb.jpg: ${why}\n`)
  })

  it('accepts a base URL, a Function URL or a full /predict URL', () => {
    expect(predictEndpoint('http://127.0.0.1:8787')).toBe('http://127.0.0.1:8787/predict')
    expect(predictEndpoint('https://abc.lambda-url.eu-west-1.on.aws/')).toBe(
      'https://abc.lambda-url.eu-west-1.on.aws/predict'
    )
    expect(predictEndpoint('http://h/api/predict')).toBe('http://h/api/predict')
  })
})

/**
 * The try-it page end to end in headless Chromium (Debian's `chromium`, driven by playwright-core): the real
 * predict server on a loopback port with real tiny models, a photo set on the file input or taken with the
 * (fake) camera, and the drawn result read back from the page: the list of faces, the boxes' pixels on the
 * canvas, the notes for a fallback and for a model without calibration, and API errors. Skipped with a message
 * when chromium is absent, except under CI=true, where that fails.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import { FolderStore } from '../../../core/store/folder-store.js'
import type { ImageResult, PredictResponse } from '../../../functions/predict/app.js'
import { startPredictServer, type PredictServer } from '../../../functions/predict/server.js'
import { CHROMIUM_PATH, hasChromium, launchChromium } from '../../../support/chromium.js'
import { makeImages } from '../../../support/images.js'
import { squareDetector, squaresScene } from '../../support/square-detector.js'
import { promote, saveTinyModel, TEST_CALIBRATION } from './models.js'

const inCi = process.env['CI'] === 'true'
const run = hasChromium() || inCi
if (!hasChromium()) {
  console.warn(
    `${inCi ? 'FAILING' : 'skipping'} the page test in headless Chromium: ${CHROMIUM_PATH} is absent (apt-get install -y chromium)`
  )
}

type Answered = Extract<ImageResult, { faces: unknown }>

describe.skipIf(!run)('the page in headless Chromium', () => {
  let dir: string
  let browser: Browser
  /** Calibrated model, with the test detector (white squares are faces). */
  let detecting: PredictServer
  /** Uncalibrated model, no detector: every answer falls back to the whole image. */
  let plain: PredictServer
  const files: Record<string, string> = {}
  const boxes = [
    { x: 40, y: 60, width: 80, height: 80 },
    { x: 260, y: 40, width: 100, height: 96 },
  ]

  beforeAll(async () => {
    browser = await launchChromium() // under CI=true without chromium, this fails the suite with its reason
    await initEngine({ backend: 'wasm' })
    vi.spyOn(console, 'log').mockImplementation(() => {})
    dir = await mkdtemp(join(tmpdir(), 'predict-page-'))
    const calibrated = new FolderStore(join(dir, 'calibrated'))
    await saveTinyModel(calibrated, 'run-cal', 5, { ageInterval: TEST_CALIBRATION })
    await promote(calibrated, 'run-cal')
    const uncalibrated = new FolderStore(join(dir, 'plain'))
    await saveTinyModel(uncalibrated, 'run-plain', 6)
    await promote(uncalibrated, 'run-plain')
    detecting = await startPredictServer({ store: calibrated, port: 0, detector: async () => squareDetector })
    plain = await startPredictServer({ store: uncalibrated, port: 0 })
    const write = async (name: string, bytes: Uint8Array) => {
      files[name] = join(dir, name)
      await writeFile(files[name], bytes)
    }
    await write('scene.jpg', await squaresScene(400, 200, boxes))
    await write('face.jpg', (await makeImages({ count: 1, size: 96, seed: 11 }))[0]!.bytes)
    await write('drawing.svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'))
  })

  afterAll(async () => {
    await browser?.close()
    await detecting?.close()
    await plain?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** Opens the page, failing the test on any script error or CSP violation it reports. */
  async function open(server: PredictServer): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) problems.push(`console: ${msg.text()}`)
    })
    await page.goto(`${server.url}/`)
    await page.waitForSelector('body[data-state="ready"]')
    return { page, problems }
  }

  async function choose(page: Page, file: string, state: 'done' | 'error' = 'done') {
    await page.setInputFiles('#file', file)
    await page.waitForSelector(`body[data-state="${state}"]`)
  }

  async function apiAnswer(server: PredictServer, file: string, mode = 'auto'): Promise<PredictResponse> {
    const form = new FormData()
    form.append('image', new Blob([new Uint8Array(await readFile(file))]), 'x.jpg')
    const res = await fetch(`${server.url}/predict?mode=${mode}`, { method: 'POST', body: form })
    expect(res.status).toBe(200)
    return (await res.json()) as PredictResponse
  }

  // Callbacks below run in the page; this project's types are Node's (no DOM lib), hence the structural casts.
  type Item = { textContent: string | null; dataset: Record<string, string> }
  type Canvas = {
    getContext(type: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } }
  }
  type Video = { videoWidth: number; videoHeight: number }

  const faceItems = (page: Page) =>
    page.$$eval('#faces li', (items) =>
      items.map((element) => {
        const li = element as unknown as Item
        return {
          text: li.textContent ?? '',
          box: li.dataset['box']!.split(',').map(Number),
          colour: li.dataset['colour']!,
        }
      })
    )

  const canvasWidth = (page: Page) => page.$eval('#canvas', (c) => (c as unknown as { width: number }).width)

  /** The canvas pixel at (x, y), as #rrggbb. */
  const pixel = (page: Page, x: number, y: number) =>
    page.$eval(
      '#canvas',
      (canvas, [px, py]) => {
        const d = (canvas as unknown as Canvas).getContext('2d').getImageData(px!, py!, 1, 1).data
        return `#${[d[0], d[1], d[2]].map((v) => v!.toString(16).padStart(2, '0')).join('')}`
      },
      [x, y]
    )

  it('draws each detected face with its box, age range and gender, as the API answers', async () => {
    const { page, problems } = await open(detecting)
    await choose(page, files['scene.jpg']!)
    const answer = (await apiAnswer(detecting, files['scene.jpg']!)).images[0] as Answered
    expect(answer.faces).toHaveLength(2)
    expect(await page.textContent('#status')).toBe('2 faces found.')
    expect(await page.isHidden('#note')).toBe(true)
    const items = await faceItems(page)
    expect(items).toHaveLength(2)
    for (const [i, face] of answer.faces.entries()) {
      const item = items[i]!
      const range = face.ageRange!
      expect(item.text).toBe(
        `age ${face.age.toFixed(1)}, 90% range ${range.low.toFixed(1)}–${range.high.toFixed(1)}; ${face.gender} ` +
          `(${Math.round(100 * (face.gender === 'female' ? face.genderProbability : 1 - face.genderProbability))}%); ` +
          `detector score ${face.score!.toFixed(2)}`
      )
      // boxes are drawn at the API's pixel positions, scaled as the photo is (400 px wide, drawn at 480)
      const scale = (await canvasWidth(page)) / answer.width
      expect(scale).toBe(1.2)
      expect(item.box).toEqual(
        [face.box.x, face.box.y, face.box.width, face.box.height].map((v) => Math.round(v * scale))
      )
      const [x, y, w, h] = item.box as [number, number, number, number]
      // the box's left edge is drawn in its colour; the inside of the (white) square is still the photo
      expect(await pixel(page, x + 1, y + Math.round(h / 2))).toBe(item.colour)
      const inside = await pixel(page, x + Math.round(w / 2), y + Math.round(h / 2))
      expect(inside).toMatch(/^#f[a-f0-9]f[a-f0-9]f[a-f0-9]$/)
    }
    expect(await page.textContent('#model')).toBe(
      'Model run-cal (resnet18-two-heads, 32 px) · face detector test-white-squares · age ranges calibrated to 90%'
    )
    expect(problems).toEqual([])
    await page.close()
  })

  it('says when auto fell back to the whole image, and when the model has no calibrated range', async () => {
    const { page, problems } = await open(plain)
    await choose(page, files['face.jpg']!)
    const answer = (await apiAnswer(plain, files['face.jpg']!)).images[0] as Answered
    expect(answer).toMatchObject({ fellBack: true, faces: [{ method: 'whole-image', ageRange: null }] })
    expect(await page.textContent('#status')).toBe('No face found: whole photo read as one face.')
    expect(await page.textContent('#note')).toMatch(/^No face was found, so the whole photo was read as one face/)
    const [item] = await faceItems(page)
    expect(item!.text).toMatch(
      new RegExp(
        `^age ${answer.faces[0]!.age.toFixed(1)} \\(no calibrated range for this model\\); (male|female) \\(\\d+%\\); whole image$`
      )
    )
    // a 96 px crop is drawn at 480 px: the whole-image box fills the canvas
    expect(await canvasWidth(page)).toBe(480)
    expect(item!.box).toEqual([0, 0, 480, 480])
    expect(await page.textContent('#model')).toMatch(/no face detector on this server · no calibrated age ranges/)
    expect(problems).toEqual([])
    await page.close()
  })

  it("shows the API's refusal of a file that is not JPEG, PNG or WebP, and of a mode the server cannot do", async () => {
    const { page } = await open(plain)
    await choose(page, files['drawing.svg']!, 'error')
    expect(await page.textContent('#status')).toMatch(/^the image \("drawing\.svg"\) is SVG, not JPEG, PNG or WebP/)
    expect(await page.isHidden('#result')).toBe(true)
    await choose(page, files['face.jpg']!)
    // changing the mode asks again for the same photo
    await page.selectOption('#mode', 'detect')
    await page.waitForSelector('body[data-state="error"]')
    expect(await page.textContent('#status')).toMatch(/mode "detect" needs a face detector/)
    await page.close()
  })

  it('accepts a photo dropped on the drop zone, and asks the API once for it', async () => {
    const { page, problems } = await open(plain)
    const posts: string[] = []
    page.on('request', (r) => void (r.method() === 'POST' && posts.push(new URL(r.url()).pathname)))
    const base64 = (await readFile(files['face.jpg']!)).toString('base64')
    type Dom = {
      DataTransfer: new () => { items: { add(file: unknown): void } }
      File: new (parts: unknown[], name: string, options: object) => unknown
    }
    const dataTransfer = await page.evaluateHandle((b64) => {
      const dom = globalThis as unknown as Dom
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
      const transfer = new dom.DataTransfer()
      transfer.items.add(new dom.File([bytes], 'dropped.jpg', { type: 'image/jpeg' }))
      return transfer
    }, base64)
    await page.dispatchEvent('#drop', 'drop', { dataTransfer })
    await page.waitForSelector('body[data-state="done"]')
    expect(await page.textContent('#status')).toBe('No face found: whole photo read as one face.')
    expect(await faceItems(page)).toHaveLength(1)
    expect(posts).toEqual(['/predict'])
    expect(problems).toEqual([])
    await page.close()
  })

  it('takes a photo with the camera and answers for it', async () => {
    const { page, problems } = await open(plain)
    await page.click('#camera-start')
    // a function, not a string: the page's CSP refuses eval, as it should
    type Doc = { document: { getElementById(id: string): Video } }
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.getElementById('video').videoWidth > 0)
    await page.click('#snap')
    await page.waitForSelector('body[data-state="done"]')
    const size = await page.$eval('#video', (v) => [
      (v as unknown as Video).videoWidth,
      (v as unknown as Video).videoHeight,
    ])
    const [item] = await faceItems(page)
    // the fake camera's frame, read whole: the centred square of the frame, at the canvas's scale
    const scale = (await canvasWidth(page)) / size[0]!
    const side = Math.min(size[0]!, size[1]!)
    expect(item!.box[2]).toBe(Math.round(side * scale))
    expect(await page.textContent('#status')).toBe('No face found: whole photo read as one face.')
    await page.click('#camera-stop')
    expect(await page.isHidden('#camera')).toBe(true)
    expect(problems).toEqual([])
    await page.close()
  })
})

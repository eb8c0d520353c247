/**
 * Fault suite: 1,200 generated malformed images and bodies against the predict server on a real socket (issue 9
 * item 11). Every answer must be a 4xx or a 200 (a mangled photo that still decodes is a photo), never a 5xx, and
 * the server must keep answering health checks and real photos throughout. Prints the counts.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { initEngine } from '../../core/engine/index.js'
import { createRng } from '../../core/random.js'
import { FolderStore } from '../../core/store/folder-store.js'
import { startPredictServer, type PredictServer } from '../../functions/predict/server.js'
import { makeImages } from '../../support/images.js'
import { promote, saveTinyModel } from '../functions/predict/models.js'

const CASES = 1200

let dir: string
let server: PredictServer
let photos: { jpeg: Buffer; png: Buffer; webp: Buffer }

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
  dir = await mkdtemp(join(tmpdir(), 'predict-fuzz-'))
  const store = new FolderStore(dir)
  await saveTinyModel(store, 'run-fuzz', 4)
  await promote(store, 'run-fuzz')
  const jpeg = (await makeImages({ count: 1, size: 48, seed: 21 }))[0]!.bytes
  photos = { jpeg, png: await sharp(jpeg).png().toBuffer(), webp: await sharp(jpeg).webp().toBuffer() }
  vi.spyOn(console, 'log').mockImplementation(() => {}) // the app's JSON request log
  server = await startPredictServer({ store, port: 0, maxInFlight: 64 })
})
afterAll(async () => {
  await server?.close()
  await rm(dir, { recursive: true, force: true })
})

interface Case {
  readonly kind: string
  readonly contentType?: string
  readonly body: Uint8Array | string
}

/** One malformed request of a kind picked by the seeded generator. */
function makeCase(i: number, rng: ReturnType<typeof createRng>): Case {
  const int = (n: number) => Math.floor(rng.next() * n)
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256))
  const pick = <T>(xs: readonly T[]) => xs[int(xs.length)]!
  const photo = pick([photos.jpeg, photos.png, photos.webp])
  const type = pick([
    'image/jpeg',
    'image/png',
    'image/webp',
    'application/octet-stream',
    'image/gif',
    'text/plain',
    '',
  ])
  switch (i % 12) {
    case 0: // a real photo cut short
      return { kind: 'truncated', contentType: type, body: photo.subarray(0, int(photo.length)) }
    case 1: {
      // bits flipped inside a real photo
      const b = Buffer.from(photo)
      for (let k = 0, n = 1 + int(20); k < n; k++) {
        const at = int(b.length)
        b[at] = b[at]! ^ (1 << int(8))
      }
      return { kind: 'bit-flipped', contentType: type, body: b }
    }
    case 2: // a right magic number and random bytes after it
      return {
        kind: 'magic+noise',
        contentType: type,
        body: Buffer.concat([
          pick([
            Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
            Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
            Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'),
          ]),
          Buffer.from(bytes(int(4000))),
        ]),
      }
    case 3: // formats the API does not take, labelled as JPEG
      return {
        kind: 'other-format',
        contentType: 'image/jpeg',
        body: pick([
          Buffer.from(
            '<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"><rect width="1" height="1"/></svg>'
          ),
          Buffer.concat([Buffer.from('GIF89a'), Buffer.from(bytes(200))]),
          Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00]), Buffer.from(bytes(300))]),
          Buffer.concat([Buffer.from('BM'), Buffer.from(bytes(300))]),
          Buffer.concat([Buffer.from([0, 0, 0, 0x1c]), Buffer.from('ftypavif'), Buffer.from(bytes(300))]),
        ]),
      }
    case 4: // pure noise or nothing at all
      return { kind: 'noise', contentType: type, body: int(4) === 0 ? new Uint8Array() : bytes(int(3000)) }
    case 5: // a PNG header that claims an enormous picture
      return {
        kind: 'huge-dims',
        contentType: 'image/png',
        body: pngHeader(50_000 + int(100_000), 50_000 + int(100_000)),
      }
    case 6: {
      // broken multipart
      const boundary = `b${int(1e9)}`
      const part = pick([
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n${Buffer.from(bytes(int(500))).toString('latin1')}\r\n--${boundary}--\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="other"\r\n\r\nhello\r\n--${boundary}--\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n`,
        `garbage without boundaries`,
      ])
      return {
        kind: 'multipart',
        contentType: pick([
          `multipart/form-data; boundary=${boundary}`,
          'multipart/form-data',
          `multipart/form-data; boundary=wrong`,
        ]),
        body: Buffer.from(part, 'latin1'),
      }
    }
    case 7: // JSON that is not what the API wants
      return {
        kind: 'json',
        contentType: 'application/json',
        body: pick([
          '{"image": "not base64 at all!!"}',
          `{"image": "${Buffer.from(bytes(int(2000))).toString('base64')}"}`,
          `{"image": "${photo.subarray(0, int(photo.length)).toString('base64')}"}`,
          '{"image": 12345}',
          '{"image": null}',
          '{"picture": "x"}',
          '[1,2,3]',
          '{"image": "',
          'null',
          '{"image": {"nested": true}}',
        ]),
      }
    case 8: // a data URL with the wrong declared type
      return {
        kind: 'json-data-url',
        contentType: 'application/json',
        body: `{"image":"data:image/svg+xml;base64,${Buffer.from('<svg/>').toString('base64')}"}`,
      }
    case 9: // a real photo sent with a lying or strange content type
      return {
        kind: 'photo-odd-type',
        contentType: pick([
          'text/html',
          'application/x-www-form-urlencoded',
          'image/svg+xml',
          'image/tiff',
          'application/json',
        ]),
        body: photo,
      }
    case 10: // photo bytes behind junk
      return { kind: 'junk-prefix', contentType: type, body: Buffer.concat([Buffer.from(bytes(1 + int(64))), photo]) }
    default: // a tiny valid image of odd dimensions
      return { kind: 'tiny-valid', contentType: 'image/png', body: tinyPng(1 + int(3), 1 + int(3)) }
  }
}

/** A PNG signature and IHDR claiming width × height, with no image data after it. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(25)
  ihdr.writeUInt32BE(13, 0)
  ihdr.write('IHDR', 4, 'latin1')
  ihdr.writeUInt32BE(width, 8)
  ihdr.writeUInt32BE(height, 12)
  ihdr[16] = 8
  ihdr[17] = 2
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), ihdr, Buffer.from('IDAT', 'latin1')])
}

const tinyPngs = new Map<string, Buffer>()
function tinyPng(w: number, h: number): Buffer {
  return tinyPngs.get(`${w}x${h}`) ?? photos.png
}

describe('predict fuzz', () => {
  it(`answers ${CASES} malformed images and bodies with no 5xx, and keeps serving`, { timeout: 600_000 }, async () => {
    for (const [w, h] of [
      [1, 1],
      [1, 3],
      [3, 1],
      [2, 2],
      [3, 3],
      [1, 2],
      [2, 1],
      [2, 3],
      [3, 2],
    ] as const) {
      tinyPngs.set(
        `${w}x${h}`,
        await sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 10, b: 10 } } })
          .png()
          .toBuffer()
      )
    }
    const rng = createRng(2026)
    const byStatus = new Map<number, number>()
    const byKind = new Map<string, Map<number, number>>()
    const serverErrors: string[] = []
    let healthChecks = 0
    for (let i = 0; i < CASES; i++) {
      const c = makeCase(i, rng)
      const res = await fetch(`${server.url}/predict`, {
        method: 'POST',
        ...(c.contentType ? { headers: { 'content-type': c.contentType } } : {}),
        body: c.body,
      })
      const text = await res.text()
      byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1)
      const kind = byKind.get(c.kind) ?? new Map<number, number>()
      kind.set(res.status, (kind.get(res.status) ?? 0) + 1)
      byKind.set(c.kind, kind)
      if (res.status >= 500)
        serverErrors.push(`#${i} ${c.kind} ${c.contentType ?? '-'}: ${res.status} ${text.slice(0, 200)}`)
      if (i % 50 === 49) {
        expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
        healthChecks++
      }
    }
    // a real photo is still answered after all that
    const ok = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: photos.jpeg,
    })
    const counts = [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}: ${n}`)
      .join(', ')
    const kinds = [...byKind.entries()]
      .map(([k, m]) => `${k} ${[...m.entries()].map(([s, n]) => `${s}×${n}`).join(' ')}`)
      .join('; ')
    console.info(
      `predict fuzz: ${CASES} requests → ${counts}; ${healthChecks} health checks passed\n  by kind: ${kinds}`
    )
    expect(serverErrors).toEqual([])
    expect(ok.status).toBe(200)
    expect([...byStatus.values()].reduce((a, b) => a + b, 0)).toBe(CASES)
  })
})

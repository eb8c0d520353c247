/**
 * Backpressure in the local predict server (issue 9 item 5): a cap on predictions in flight, answered with 503
 * and Retry-After, and header/request timeouts that drop stalled clients.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import { FolderStore } from '../../../core/store/folder-store.js'
import { startPredictServer, type PredictServer } from '../../../functions/predict/server.js'
import { makeImages } from '../../../support/images.js'
import { promote, saveTinyModel } from './models.js'

let dir: string
let server: PredictServer
let jpeg: Buffer

beforeAll(async () => {
  await initEngine({ backend: 'wasm' })
  dir = await mkdtemp(join(tmpdir(), 'predict-limits-'))
  const store = new FolderStore(dir)
  await saveTinyModel(store, 'run-limits', 4)
  await promote(store, 'run-limits')
  jpeg = (await makeImages({ count: 1, size: 48, seed: 9 }))[0]!.bytes
  server = await startPredictServer({ store, port: 0, maxInFlight: 2, headersTimeoutMs: 300, requestTimeoutMs: 20_000 })
})
afterAll(async () => {
  await server?.close()
  await rm(dir, { recursive: true, force: true })
})

/** A POST whose body is sent only half, so the request stays in flight until `finish()`. */
function heldRequest(): { finish(): Promise<IncomingMessage & { text: string }>; req: ClientRequest } {
  const url = new URL(`${server.url}/predict`)
  let resolveResponse!: (res: IncomingMessage & { text: string }) => void
  const response = new Promise<IncomingMessage & { text: string }>((done) => (resolveResponse = done))
  const req = httpRequest(
    {
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: '/predict',
      headers: { 'content-type': 'image/jpeg', 'content-length': jpeg.length },
    },
    (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString()))
      res.on('end', () => resolveResponse(Object.assign(res, { text })))
    }
  )
  req.write(jpeg.subarray(0, 100))
  return {
    req,
    finish: () => {
      req.end(jpeg.subarray(100))
      return response
    },
  }
}

describe('predict server backpressure', () => {
  it('answers 503 with Retry-After past the cap on predictions in flight, and serves again once they end', async () => {
    // Prepare: two predictions held in flight (their bodies half sent)
    const first = heldRequest()
    const second = heldRequest()
    // the server counts a request once its headers arrived
    while (server.inFlight() < 2) await new Promise((done) => setTimeout(done, 20))
    const health = await fetch(`${server.url}/healthz`)
    expect(health.status).toBe(200)
    // Act
    const third = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: jpeg,
    })
    // Assess
    expect(third.status).toBe(503)
    expect(third.headers.get('retry-after')).toBe('1')
    expect(await third.json()).toMatchObject({ error: 'busy' })
    const [a, b] = await Promise.all([first.finish(), second.finish()])
    expect([a.statusCode, b.statusCode]).toEqual([200, 200])
    const fourth = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: jpeg,
    })
    expect(fourth.status).toBe(200)
  })

  it('drops a client that never finishes its headers', async () => {
    const url = new URL(server.url)
    const socket = connect(Number(url.port), url.hostname)
    let received = ''
    socket.on('data', (c: Buffer) => (received += c.toString()))
    socket.write('POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n')
    // Act: nothing more is sent; the server must end the connection (Node's default would wait 60 s)
    await new Promise<void>((done) => socket.once('close', () => done()))
    // Assess: 408, or a plain close
    expect(received === '' || received.startsWith('HTTP/1.1 408')).toBe(true)
    // and the server still answers
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  }, 15_000)
})

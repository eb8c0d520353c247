/**
 * `startPredictServer` on a real socket, reading a folder store (as `npm start`'s local system may), and the
 * environment parsing of both entries.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { initEngine } from '../../../core/engine/index.js'
import { FolderStore } from '../../../core/store/folder-store.js'
import { ConfigError, parseLambdaConfig, parseServerConfig } from '../../../functions/predict/config.js'
import { startPredictServer, type PredictServer } from '../../../functions/predict/server.js'
import { makeImages } from '../../../support/images.js'
import { analyzeDirectly, onTheWire, promote, saveTinyModel } from './models.js'

describe('startPredictServer', () => {
  let dir: string
  let store: FolderStore
  let server: PredictServer
  let jpeg: Buffer

  beforeAll(async () => {
    await initEngine({ backend: 'wasm' })
    dir = await mkdtemp(join(tmpdir(), 'predict-server-'))
    store = new FolderStore(dir)
    await saveTinyModel(store, 'run-local', 4)
    await promote(store, 'run-local')
    jpeg = (await makeImages({ count: 1, size: 48, seed: 9 }))[0]!.bytes
    vi.spyOn(console, 'log').mockImplementation(() => {})
    server = await startPredictServer({ store, port: 0 })
  })

  afterAll(async () => {
    await server?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves the promoted model on a free loopback port', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const headers = { 'content-type': 'image/jpeg' }
    const res = await fetch(`${server.url}/predict`, { method: 'POST', headers, body: jpeg })
    expect(res.status).toBe(200)
    const direct = await analyzeDirectly(store, 'run-local', jpeg)
    expect(await res.json()).toMatchObject({
      images: [{ index: 0, ...direct, faces: direct.faces.map(onTheWire) }],
      model: { runId: 'run-local' },
    })
  })

  it('accepts a multipart upload as a browser form sends it', async () => {
    const form = new FormData()
    form.append('image', new Blob([new Uint8Array(jpeg)], { type: 'image/jpeg' }), 'face.jpg')
    const res = await fetch(`${server.url}/predict`, { method: 'POST', body: form })
    expect(res.status).toBe(200)
    const health = await fetch(`${server.url}/healthz`)
    expect(await health.json()).toMatchObject({ model: { loaded: true } })
  })

  it('answers 413 from the declared length, without reading a huge body', async () => {
    const res = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: new Uint8Array(6 * 1024 * 1024),
    })
    expect(res.status).toBe(413)
    expect(await res.json()).toMatchObject({ error: { code: 'payload_too_large' } })
  })
})

describe('predict configuration', () => {
  it('parses the Lambda environment with defaults', () => {
    expect(parseLambdaConfig({ STORE_BUCKET: 'b' })).toEqual({ bucket: 'b', refreshSeconds: 60 })
    const env = { STORE_BUCKET: 'b', MODEL_REFRESH_SECONDS: '300', WASM_PATH: '/var/task/wasm/' }
    expect(parseLambdaConfig(env)).toEqual({ bucket: 'b', refreshSeconds: 300, wasmPath: '/var/task/wasm/' })
  })

  it('fails naming each bad variable', () => {
    expect(() => parseLambdaConfig({ MODEL_REFRESH_SECONDS: 'soon' })).toThrow(ConfigError)
    expect(() => parseLambdaConfig({ MODEL_REFRESH_SECONDS: 'soon' })).toThrow(/STORE_BUCKET.*MODEL_REFRESH_SECONDS/)
    expect(() => parseServerConfig({})).toThrow(/STORE_URI/)
    expect(() => parseServerConfig({ STORE_URI: '/x', PORT: 'http' })).toThrow(/PORT/)
  })

  it('reads the local server from STORE_URI, or s3://STORE_BUCKET', () => {
    expect(parseServerConfig({ STORE_BUCKET: 'b' })).toEqual({
      storeUri: 's3://b',
      port: 8080,
      hostname: '127.0.0.1',
      refreshSeconds: 60,
      backend: 'auto',
    })
    const both = { STORE_URI: '.local/store', STORE_BUCKET: 'b', PORT: '0' }
    expect(parseServerConfig(both)).toMatchObject({ storeUri: '.local/store', port: 0 })
  })
})

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../cli/main.js'
import { predictEndpoint } from '../../cli/commands/predict.js'
import { makeImages } from '../support/images.js'
import { captureIo } from './io.js'

/** A stand-in predict API: answers as the real one does, and remembers what it was sent. */
function fakeApi(answer: (body: Buffer) => { status: number; json: unknown }) {
  const seen: { path: string; contentType: string; bytes: number }[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      seen.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', bytes: body.length })
      const { status, json } = answer(body)
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json))
    })
  })
  return { server, seen }
}

const listen = (server: Server) =>
  new Promise<string>((done) => server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
const close = (server: Server) => new Promise((done) => server.close(done))

describe('agegender predict', () => {
  let work: string
  let ok: ReturnType<typeof fakeApi>
  let okUrl: string
  let noModel: ReturnType<typeof fakeApi>
  let noModelUrl: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-predict-'))
    const [a, b] = await makeImages({ count: 2, size: 32, seed: 9 })
    await writeFile(join(work, 'a.jpg'), a!.bytes)
    await writeFile(join(work, 'b.jpg'), b!.bytes)
    ok = fakeApi(() => ({
      status: 200,
      json: { age: 31.44, gender: 'female', genderProbability: 0.8123, model: { runId: 'faces-aaaaaaaaaa' } },
    }))
    okUrl = await listen(ok.server)
    noModel = fakeApi(() => ({
      status: 503,
      json: { error: { code: 'no_model', message: 'no model is promoted yet', hint: 'upload a dataset' } },
    }))
    noModelUrl = await listen(noModel.server)
  })
  afterAll(async () => {
    await close(ok.server)
    await close(noModel.server)
    await rm(work, { recursive: true, force: true })
  })

  it('posts each image and prints age, gender with its probability, and the model', async () => {
    const io = captureIo({ cwd: work, env: {} })
    const code = await main(['predict', 'a.jpg', 'b.jpg', '--url', okUrl], io)
    expect(code, io.stderrText()).toBe(0)
    expect(io.stdoutText()).toBe(
      'a.jpg: age 31.4, female (81.2%)  [model faces-aaaaaaaaaa]\nb.jpg: age 31.4, female (81.2%)  [model faces-aaaaaaaaaa]\n',
    )
    expect(ok.seen.at(-1)).toMatchObject({ path: '/predict', contentType: 'image/jpeg' })
    expect(ok.seen.at(-1)!.bytes).toBeGreaterThan(100)
  })

  it("finds the local system's predict API in .local/endpoints.json", async () => {
    await mkdir(join(work, '.local'), { recursive: true })
    await writeFile(join(work, '.local', 'endpoints.json'), JSON.stringify({ predictUrl: okUrl }))
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'a.jpg', '--json'], io)).toBe(0)
    expect(JSON.parse(io.stdoutText())).toMatchObject({ file: 'a.jpg', age: 31.44, model: { runId: 'faces-aaaaaaaaaa' } })
    await rm(join(work, '.local'), { recursive: true })
  })

  it("reports the API's error and hint with exit 1", async () => {
    const io = captureIo({ cwd: work, env: { AGEGENDER_PREDICT_URL: noModelUrl } })
    expect(await main(['predict', 'a.jpg'], io)).toBe(1)
    expect(io.stderrText()).toBe('a.jpg: HTTP 503: no model is promoted yet (upload a dataset)\n')
  })

  it('says when nothing listens, once, with exit 1', async () => {
    const gone = createServer()
    const url = await listen(gone)
    await close(gone)
    const io = captureIo({ cwd: work, env: {} })
    expect(await main(['predict', 'a.jpg', 'b.jpg', '--url', url], io)).toBe(1)
    expect(io.stderrText()).toBe(`a.jpg: no predict API at ${url}/predict (ECONNREFUSED): is \`npm start\` running? Or pass --url\n`)
  })

  it('accepts a base URL, a Function URL or a full /predict URL', () => {
    expect(predictEndpoint('http://127.0.0.1:8787')).toBe('http://127.0.0.1:8787/predict')
    expect(predictEndpoint('https://abc.lambda-url.eu-west-1.on.aws/')).toBe('https://abc.lambda-url.eu-west-1.on.aws/predict')
    expect(predictEndpoint('http://h/api/predict')).toBe('http://h/api/predict')
  })
})

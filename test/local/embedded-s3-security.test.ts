/**
 * The embedded S3 server accepts nothing without its credentials and writes nothing outside its folder
 * (issue 9, items 1 and 2): the attacks are made with raw HTTP, as a browser page or curl would make them.
 */
import { CopyObjectCommand, DeleteObjectsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { S3Store } from '../../core/store/s3-store.js'
import { startEmbeddedS3, type EmbeddedS3 } from '../../local/embedded-s3.js'
import { presignGetUrl } from '../../local/s3-auth.js'

let root: string
let server: EmbeddedS3
let store: S3Store
const BUCKET = 'agegender'
const PROMOTION = JSON.stringify({ runId: 'good', modelPrefix: 'models/good/' })

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** A request sent byte for byte as given (fetch would normalize `..` out of the path). */
function raw(method: string, path: string, headers: Record<string, string> = {}, body = ''): Promise<RawResponse> {
  const { port } = server
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() })
        )
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

const formBody = (key: string, content: string) => {
  const b = '----evil'
  return {
    type: `multipart/form-data; boundary=${b}`,
    body: `--${b}\r\nContent-Disposition: form-data; name="key"\r\n\r\n${key}\r\n--${b}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\nContent-Type: application/json\r\n\r\n${content}\r\n--${b}--\r\n`,
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedded-s3-sec-'))
  await mkdir(join(root, 'data'))
  server = await startEmbeddedS3({ directory: join(root, 'data'), bucket: BUCKET })
  store = new S3Store({ bucket: BUCKET, client: new S3Client(server.clientConfig) })
  await store.put('models/latest.json', PROMOTION)
})
afterAll(async () => {
  await server.stop()
  await rm(root, { recursive: true, force: true })
})

describe('embedded S3: credentials', () => {
  it('refuses an unsigned PUT and an unsigned GET with 403', async () => {
    const put = await raw(
      'PUT',
      `/${BUCKET}/models/latest.json`,
      { 'content-type': 'application/json' },
      '{"runId":"evil"}'
    )
    const get = await raw('GET', `/${BUCKET}/models/latest.json`)
    expect(put.status).toBe(403)
    expect(put.body).toContain('<Code>AccessDenied</Code>')
    expect(put.body).toContain('signed (SigV4)')
    expect(get.status).toBe(403)
    expect(Buffer.from((await store.get('models/latest.json'))!).toString()).toBe(PROMOTION)
  })

  it('refuses a browser form POST, from a page or from curl, and the promoted model stays', async () => {
    const form = formBody('models/latest.json', '{"runId":"evil"}')
    const fromPage = await raw(
      'POST',
      `/${BUCKET}/`,
      { origin: 'https://evil.example', 'content-type': form.type },
      form.body
    )
    const fromCurl = await raw('POST', `/${BUCKET}/`, { 'content-type': form.type }, form.body)
    expect(fromPage.status).toBe(403)
    expect(fromPage.headers['access-control-allow-origin']).toBeUndefined()
    expect(fromCurl.status).toBe(405)
    expect(fromCurl.body).toContain('form uploads')
    expect(Buffer.from((await store.get('models/latest.json'))!).toString()).toBe(PROMOTION)
  })

  it('allows no origin: a CORS preflight is refused without Access-Control headers', async () => {
    const preflight = await raw('OPTIONS', `/${BUCKET}/models/latest.json`, {
      origin: 'http://127.0.0.1:8787',
      'access-control-request-method': 'PUT',
    })
    expect(preflight.status).toBe(403)
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('refuses a request signed with another secret, and one from another access key', async () => {
    const wrongSecret = new S3Client({
      ...server.clientConfig,
      credentials: { accessKeyId: server.credentials.accessKeyId, secretAccessKey: 'S3RVER' },
    })
    const wrongKey = new S3Client({
      ...server.clientConfig,
      credentials: { accessKeyId: 'SOMEONE', secretAccessKey: server.credentials.secretAccessKey },
    })
    const put = (client: S3Client) =>
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'models/latest.json', Body: '{"runId":"evil"}' }))
    await expect(put(wrongSecret)).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' })
    await expect(put(wrongKey)).rejects.toMatchObject({ name: 'InvalidAccessKeyId' })
    expect(Buffer.from((await store.get('models/latest.json'))!).toString()).toBe(PROMOTION)
  })

  it('accepts what the SDK signs with the credentials it exports: put, get, list, copy, delete, keys with spaces and unicode', async () => {
    const key = 'datasets/a b+c/ünï cödé (1).txt'
    await store.put(key, 'hello')
    expect(Buffer.from((await store.get(key))!).toString()).toBe('hello')
    expect((await store.list('datasets/a b+c/')).map((o) => o.key)).toEqual([key])
    await new S3Client(server.clientConfig).send(
      new CopyObjectCommand({ Bucket: BUCKET, Key: 'datasets/copy.txt', CopySource: `${BUCKET}/models/latest.json` })
    )
    expect(Buffer.from((await store.get('datasets/copy.txt'))!).toString()).toBe(PROMOTION)
    await store.delete(key)
    expect(await store.get(key)).toBeUndefined()
  })

  it('serves a presigned GET (a browser can open it) and refuses it tampered with or expired', async () => {
    await store.put('runs/r1/report.html', '<html>report</html>')
    const url = await presignGetUrl(server.endpoint, BUCKET, 'runs/r1/report.html', server.credentials)
    const ok = await fetch(url)
    expect(ok.status).toBe(200)
    expect(await ok.text()).toBe('<html>report</html>')
    const tampered = await fetch(url.replace('runs/r1/report.html', 'models/latest.json'))
    expect(tampered.status).toBe(403)
    const old = await presignGetUrl(server.endpoint, BUCKET, 'runs/r1/report.html', server.credentials, {
      expiresIn: 60,
      now: new Date(Date.now() - 3600_000),
    })
    expect((await fetch(old)).status).toBe(403)
  })
})

describe('embedded S3: keys stay in the data folder', () => {
  const escaped = () => join(root, 'escaped.txt')

  it('refuses keys with .. segments with 400, even from a correctly signed client', async () => {
    const client = new S3Client(server.clientConfig)
    for (const Key of ['../../escaped.txt', 'runs/../../../escaped.txt', 'a/./b']) {
      await expect(client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'x' }))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 400 },
      })
    }
    expect(existsSync(escaped())).toBe(false)
  })

  it('refuses percent-encoded .. and traversal through the upload id or the copy source, before the signature is looked at', async () => {
    const encoded = await raw('PUT', `/${BUCKET}/%2e%2e/%2E%2E/escaped.txt`, {}, 'x')
    const upload = await raw('PUT', `/${BUCKET}/k?partNumber=1&uploadId=../../../escaped`, {}, 'x')
    const copy = await raw('PUT', `/${BUCKET}/k`, { 'x-amz-copy-source': `/${BUCKET}/../../etc/passwd` })
    for (const res of [encoded, upload, copy]) {
      expect(res.status).toBe(400)
      expect(res.body).toContain('<Code>InvalidArgument</Code>')
    }
    expect(existsSync(escaped())).toBe(false)
  })

  it('does not delete outside the bucket through a multi-object delete body', async () => {
    const client = new S3Client(server.clientConfig)
    await store.put('keep/me.txt', 'x')
    const before = await readdir(root)
    const result = await client
      .send(
        new DeleteObjectsCommand({
          Bucket: BUCKET,
          Delete: { Objects: [{ Key: '../agegender/keep/me.txt' }, { Key: '../../data' }] },
        })
      )
      .catch((err: unknown) => err)
    expect(result).toBeDefined()
    expect(await readdir(root)).toEqual(before)
    expect(await store.get('keep/me.txt')).toBeDefined()
  })
})

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { RunStatus } from '../../../core/runs.js'
import { FolderStore } from '../../../core/store/folder-store.js'
import { getJson, InvalidDocumentError, putJson } from '../../../core/store/object-store.js'

let dir: string
let store: FolderStore
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'get-json-'))
  store = new FolderStore(dir)
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('getJson', () => {
  it('parses the document with its schema, and is undefined when there is none', async () => {
    // GIVEN a document with a field its schema has a default for
    await putJson(store, 'doc.json', { n: 1 })
    const Doc = z.object({ n: z.number(), label: z.string().default('none') })
    // WHEN  THEN the schema's output
    expect(await getJson(store, 'doc.json', Doc)).toEqual({ n: 1, label: 'none' })
    expect(await getJson(store, 'missing.json', Doc)).toBeUndefined()
  })

  it('names the key and every bad field of a malformed document', async () => {
    // GIVEN a status.json with a bad state, no dataset and a non-string updatedAt
    const key = 'runs/r1/status.json'
    await putJson(store, key, { runId: 'r1', state: 'done', createdAt: '2026-01-01T00:00:00Z', updatedAt: 5 })
    // WHEN  THEN
    const error = await getJson(store, key, RunStatus).then(
      () => undefined,
      (err: unknown) => err
    )
    if (!(error instanceof InvalidDocumentError)) throw new Error(`expected an InvalidDocumentError, got ${error}`)
    expect(error.key).toBe(key)
    const message = error.message
    expect(message).toMatch(/^runs\/r1\/status\.json is not a valid document: /)
    expect(message).toMatch(/state: /)
    expect(message).toMatch(/dataset: /)
    expect(message).toMatch(/updatedAt: /)
  })

  it('names the key of a document that is not JSON', async () => {
    await store.put('broken.json', '{"runId": "r1", "sta')
    await expect(getJson(store, 'broken.json', RunStatus)).rejects.toThrow(
      /^broken\.json is not a valid document: .*JSON/
    )
  })
})

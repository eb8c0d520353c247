/**
 * Fresh stores for contract tests: a FolderStore on its own temp folder and an S3Store on its own bucket of the
 * embedded S3 server (a bucket per store keeps tests independent, as a folder per store does). Call at module
 * level: it registers the S3 server and removes the folders after the file's tests.
 * @module
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { FolderStore } from '../../core/store/folder-store.js'
import type { ObjectStore } from '../../core/store/object-store.js'
import { S3Store } from '../../core/store/s3-store.js'
import { useTestS3 } from './s3-server.js'

export interface TestStores {
  readonly newFolderStore: () => Promise<FolderStore>
  readonly newS3Store: () => Promise<S3Store>
  /** `[name, factory]` pairs for `describe.each`. */
  readonly factories: [string, () => Promise<ObjectStore>][]
}

/** @param name distinguishes the folders and buckets of one test file from another's. */
export function useTestStores(name: string): TestStores {
  const s3 = useTestS3()
  const folders: string[] = []
  let buckets = 0
  afterAll(async () => {
    await Promise.all(folders.map((f) => rm(f, { recursive: true, force: true })))
  })
  const newFolderStore = async () => {
    const dir = await mkdtemp(join(tmpdir(), `${name}-`))
    folders.push(dir)
    return new FolderStore(dir)
  }
  const newS3Store = async () => {
    const bucket = `${name}-${++buckets}`
    await s3()
      .client()
      .send(new CreateBucketCommand({ Bucket: bucket }))
    return new S3Store({ bucket, client: s3().client() })
  }
  return {
    newFolderStore,
    newS3Store,
    factories: [
      ['FolderStore', newFolderStore],
      ['S3Store', newS3Store],
    ],
  }
}

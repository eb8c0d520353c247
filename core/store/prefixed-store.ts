import type { Body, GetOptions, ObjectStore, PutOptions, StoredObject } from './object-store.js'

/** A view of `store` under `prefix` (`runs/<runId>/`): the trainer writes relative keys, wherever it runs. */
export function prefixedStore(store: ObjectStore, prefix: string): ObjectStore {
  const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`
  return {
    location: `${store.location}/${p}`.replace(/\/+$/, '/'),
    get: (key: string, options?: GetOptions) => store.get(p + key, options),
    getStream: (key: string, options?: GetOptions) => store.getStream(p + key, options),
    getEntry: (key: string) => store.getEntry(p + key),
    put: (key: string, body: Body, options?: PutOptions) => store.put(p + key, body, options),
    list: async (prefix2: string): Promise<StoredObject[]> =>
      (await store.list(p + prefix2)).map((o) => ({ ...o, key: o.key.slice(p.length) })),
    delete: (key: string) => store.delete(p + key),
  }
}

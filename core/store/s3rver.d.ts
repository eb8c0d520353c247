/**
 * Types for the parts of s3rver 3.7 we use (the package ships none). Checked against
 * `node_modules/s3rver/lib/s3rver.js` and `lib/models/event.js`.
 */
declare module 's3rver' {
  import type { AddressInfo } from 'node:net'

  namespace S3rver {
    interface BucketConfig {
      name: string
      /** CORS or website configuration XML documents. */
      configs?: (string | Buffer)[]
    }

    interface Options {
      /** @default 'localhost' */
      address?: string
      /** 0 picks a free port. @default 4568 */
      port?: number
      /** Turns off request and error logging. @default false */
      silent?: boolean
      /** Where buckets and objects are kept. @default - `<tmpdir>/s3rver` */
      directory?: string
      /** @default false */
      resetOnClose?: boolean
      /** @default false */
      allowMismatchedSignatures?: boolean
      /** @default true */
      vhostBuckets?: boolean
      /** @default 'amazonaws.com' */
      serviceEndpoint?: string
      /** Buckets created (if missing) by `run()`. */
      configureBuckets?: BucketConfig[]
    }

    /** One record of what s3rver emits on `'event'`; close to, but not exactly, the AWS notification shape. */
    interface EventRecord {
      eventVersion: string
      eventSource: 'aws:s3'
      awsRegion: string
      eventTime: string
      /**
       * `ObjectCreated:Put`, `ObjectCreated:Post` (multipart completion or POST form), `ObjectCreated:Copy`,
       * `ObjectRemoved:Delete`.
       */
      eventName: string
      userIdentity: { principalId: string }
      requestParameters: { sourceIPAddress: string }
      responseElements: Record<string, string>
      s3: {
        s3SchemaVersion: string
        configurationId: string
        bucket: { name: string; ownerIdentity: { principalId: string }; arn: string }
        /** `key` is NOT URL-encoded; `eTag` is absent on Copy and Delete; there is never a `versionId`. */
        object: { key: string; sequencer: string; size?: number; eTag?: string }
      }
    }

    interface Event {
      Records: EventRecord[]
    }

    /** The few fields of Koa's context that a middleware here touches. */
    interface Context {
      method: string
      path: string
      /** Assigning replaces the query string. */
      query: Record<string, string | string[] | undefined>
      body: unknown
      status: number
      type: string
      /** A request header, `''` when absent. */
      get(field: string): string
    }

    type Middleware = (ctx: Context, next: () => Promise<void>) => Promise<void>
  }

  /** A Koa application. */
  class S3rver {
    constructor(options?: S3rver.Options)
    /** Koa's middleware stack, in order; s3rver's router is last. */
    middleware: S3rver.Middleware[]
    run(): Promise<AddressInfo>
    close(): Promise<void>
    reset(): void
    on(event: 'event', listener: (event: S3rver.Event) => void): this
    on(event: 'error', listener: (err: Error) => void): this
    off(event: string, listener: (...args: never[]) => void): this
  }

  export = S3rver
}

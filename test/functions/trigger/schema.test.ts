/** The S3 event schema against a real notification fixture and malformed payloads. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { InvalidEventError, parseS3Event } from '../../../functions/trigger/schema.js'

const fixturePath = new URL('../../fixtures/events/s3/object-created.json', import.meta.url)
/** A fresh copy of the fixture each call, free to mutate. */
const load = () => JSON.parse(readFileSync(fixturePath, 'utf8'))
const withoutKey = () => {
  const e = load()
  delete e.Records[0].s3.object.key
  return e
}
const fromSqs = () => {
  const e = load()
  e.Records[0].eventSource = 'aws:sqs'
  return e
}

describe('Schema: S3 event', () => {
  it('parses an S3 object-created notification, keeping the key URL-encoded', () => {
    const event = parseS3Event(load())

    expect(event.Records).toHaveLength(1)
    expect(event.Records[0]).toMatchObject({
      eventName: 'ObjectCreated:CompleteMultipartUpload',
      s3: {
        bucket: { name: 'agegender-datasets-123456789012' },
        object: { key: 'datasets/UTK+faces+100%25%2Bcropped.zip' },
      },
    })
    // Fields the trigger does not read are kept, not stripped.
    expect(event.Records[0]).toHaveProperty('responseElements')
  })

  it.each([
    ['no Records', {}, /Records/],
    ['a record without s3.object.key', withoutKey(), /Records\.0\.s3\.object\.key/],
    ['another event source', fromSqs(), /Records\.0\.eventSource/],
    ['a string', 'hello', /\(event\)/],
  ])('throws an InvalidEventError naming the field for %s', (_what, payload, where) => {
    expect(() => parseS3Event(payload)).toThrow(InvalidEventError)
    expect(() => parseS3Event(payload)).toThrow(where)
  })
})

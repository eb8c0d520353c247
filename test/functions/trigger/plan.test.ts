/** plan(): S3 notification records → run requests or skips, as a pure function. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { runIdFor } from '../../../core/runs.js'
import { decodeEventKey, jobNameFor, plan } from '../../../functions/trigger/plan.js'
import { parseS3Event, type S3EventRecordInput } from '../../../functions/trigger/schema.js'

const fixturePath = new URL('../../fixtures/events/s3/object-created.json', import.meta.url)
const fixture = parseS3Event(JSON.parse(readFileSync(fixturePath, 'utf8')))
const base = fixture.Records[0]!

/** The fixture's record with some object fields replaced (undefined removes one). */
type ObjectFields = Partial<Record<'key' | 'eTag' | 'versionId' | 'sequencer', string | undefined>> & { size?: number }

function recordWith(object: ObjectFields, eventName?: string): S3EventRecordInput {
  const record = structuredClone(base)
  for (const [name, value] of Object.entries(object)) {
    if (value === undefined) delete (record.s3.object as Record<string, unknown>)[name]
    else (record.s3.object as Record<string, unknown>)[name] = value
  }
  if (eventName) record.eventName = eventName
  return record
}

describe('plan', () => {
  it('plans a run for the fixture upload, with the key decoded and the version id as version', () => {
    // Act
    const [planned] = plan(fixture.Records, { bucket: 'agegender-datasets-123456789012' })

    // Assess
    const key = 'datasets/UTK faces 100%+cropped.zip'
    const runId = runIdFor(key, '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY')
    expect(planned).toEqual({
      action: 'run',
      run: {
        runId,
        jobName: `train-${runId}`,
        bucket: 'agegender-datasets-123456789012',
        datasetKey: key,
        datasetVersion: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY',
        versionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY',
        etag: 'b21b0ff06d4cc53b1dfd8e3b7a6e0c42-13',
      },
    })
  })

  it.each(['datasets/faces.ZIP', 'datasets/faces.TAR.GZ', 'datasets/faces.Tgz', 'datasets/faces.Tar'])(
    'starts a run for an upload whose suffix is in another letter case (%s)',
    (key) => {
      const [planned] = plan([recordWith({ key })])
      expect(planned).toMatchObject({
        action: 'run',
        run: { datasetKey: key, runId: expect.stringMatching(/^faces-[0-9a-f]{10}$/) },
      })
    }
  )

  it('falls back to the ETag, then the sequencer, when the bucket is not versioned', () => {
    const [byEtag] = plan([recordWith({ versionId: undefined })])
    const [byNullVersion] = plan([recordWith({ versionId: 'null' })])
    const [bySequencer] = plan([recordWith({ versionId: undefined, eTag: undefined })])

    expect(byEtag).toMatchObject({ run: { datasetVersion: 'b21b0ff06d4cc53b1dfd8e3b7a6e0c42-13' } })
    expect(byNullVersion).toMatchObject({ run: { datasetVersion: 'b21b0ff06d4cc53b1dfd8e3b7a6e0c42-13' } })
    expect(bySequencer).toMatchObject({ run: { datasetVersion: '0062E99A88DC407460' } })
  })

  it('gives the same run id to a redelivered record and a new one to a new version', () => {
    const [a, b] = plan([base, structuredClone(base)])
    const [c] = plan([recordWith({ versionId: 'another-version' })])

    expect(a).toMatchObject({ action: 'run' })
    expect(a).toEqual(b)
    expect(c).not.toMatchObject({ run: { runId: (a as { run: { runId: string } }).run.runId } })
  })

  it.each([
    ['datasets/readme.txt', undefined, /not a dataset key/],
    ['runs/x/status.json', undefined, /not a dataset key/],
    ['models/latest.json', undefined, /not a dataset key/],
    ['other/faces.zip', undefined, /not a dataset key/],
    ['datasets/faces.zip', 'ObjectRemoved:Delete', /not an object-created event/],
    ['datasets/bad%zz.zip', undefined, /not valid URL encoding/],
  ])('skips %s (%s)', (key, eventName, reason) => {
    const [planned] = plan([recordWith({ key }, eventName)])

    expect(planned).toMatchObject({ action: 'skip', reason: expect.stringMatching(reason) })
  })

  it('skips empty objects, records without any version and records for another bucket', () => {
    const [empty] = plan([recordWith({ size: 0 })])
    const [noVersion] = plan([recordWith({ versionId: undefined, eTag: undefined, sequencer: undefined })])
    const [elsewhere] = plan([base], { bucket: 'some-other-bucket' })

    expect(empty).toMatchObject({ action: 'skip', reason: 'empty object' })
    expect(noVersion).toMatchObject({
      action: 'skip',
      reason: expect.stringMatching(/no versionId, eTag or sequencer/),
    })
    expect(elsewhere).toMatchObject({
      action: 'skip',
      reason: 'bucket agegender-datasets-123456789012 is not some-other-bucket',
    })
  })

  it('makes valid Batch job names, even from long and odd keys', () => {
    const key = `datasets/${'ä very long name, with (odd) characters '.repeat(8)}.tar.gz`
    const [planned] = plan([recordWith({ key: encodeURIComponent(key) })])

    expect(planned).toMatchObject({ action: 'run' })
    const { jobName } = (planned as { run: { jobName: string } }).run
    expect(jobName).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/)
    expect(jobNameFor('x'.repeat(300))).toHaveLength(128)
  })
})

describe('decodeEventKey', () => {
  it('decodes form-style URL encoding (space as +)', () => {
    expect(decodeEventKey('datasets/UTK+faces+100%25%2Bcropped.zip')).toBe('datasets/UTK faces 100%+cropped.zip')
  })
})

/** The trigger's environment: parsed once, failing with the names of the bad variables. */
import { describe, expect, it } from 'vitest'
import { ConfigError, parseTriggerConfig } from '../../../functions/trigger/config.js'

const complete = {
  STORE_BUCKET: 'agegender-datasets',
  JOB_QUEUE_ARN: 'arn:aws:batch:eu-west-1:123456789012:job-queue/trainer',
  JOB_DEFINITION_ARN: 'arn:aws:batch:eu-west-1:123456789012:job-definition/trainer:3',
}

describe('parseTriggerConfig', () => {
  it('reads the bucket, queue and job definition', () => {
    expect(parseTriggerConfig(complete)).toEqual({
      bucket: 'agegender-datasets',
      jobQueue: complete.JOB_QUEUE_ARN,
      jobDefinition: complete.JOB_DEFINITION_ARN,
    })
  })

  it.each(['STORE_BUCKET', 'JOB_QUEUE_ARN', 'JOB_DEFINITION_ARN'])(
    'fails naming %s when it is missing or blank',
    (name) => {
      const missing = { ...complete, [name]: undefined }
      const blank = { ...complete, [name]: '  ' }

      expect(() => parseTriggerConfig(missing)).toThrow(ConfigError)
      expect(() => parseTriggerConfig(missing)).toThrow(new RegExp(`${name}: required`))
      expect(() => parseTriggerConfig(blank)).toThrow(new RegExp(`${name}: required`))
    }
  )

  it('names every missing variable at once', () => {
    expect(() => parseTriggerConfig({})).toThrow(/STORE_BUCKET.*JOB_QUEUE_ARN.*JOB_DEFINITION_ARN/)
  })
})

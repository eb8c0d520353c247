import { App } from 'aws-cdk-lib'
import { describe, expect, it } from 'vitest'
import { settingsFromContext } from '../../infra/settings.js'

const settings = (context: Record<string, unknown>) => settingsFromContext(new App({ context }).node)

describe('settingsFromContext', () => {
  it('defaults to spot g4dn/g5 instances, a retained bucket and a public endpoint', () => {
    // GIVEN no context  WHEN read  THEN the documented defaults
    expect(settings({})).toMatchObject({
      instanceTypes: ['g4dn.xlarge', 'g5.xlarge'],
      spot: true,
      maxvCpus: 8,
      batchImageType: 'ECS_AL2023_NVIDIA',
      bucketRemovalPolicy: 'retain',
      predictAuth: 'NONE',
      trainer: true,
    })
  })

  it('reads -c strings and cdk.json JSON alike', () => {
    // GIVEN string values (command line) and JSON values (cdk.json)  THEN the same typed settings
    const fromCli = settings({ spot: 'false', maxvCpus: '16', instanceTypes: 'g5.xlarge, g6.xlarge' })
    const fromJson = settings({ spot: false, maxvCpus: 16, instanceTypes: ['g5.xlarge', 'g6.xlarge'] })
    expect(fromCli).toEqual(fromJson)
    expect(fromCli).toMatchObject({ spot: false, maxvCpus: 16, instanceTypes: ['g5.xlarge', 'g6.xlarge'] })
  })

  it('fails naming each bad key', () => {
    // GIVEN typos and out-of-range values  THEN one error listing every offending key
    expect(() => settings({ spot: 'yes', predictAuth: 'PUBLIC', trainImageSize: '100' })).toThrow(
      /^invalid CDK context: (?=.*spot: )(?=.*predictAuth: )(?=.*trainImageSize: )/
    )
    expect(() => settings({ instanceTypes: 'g4dn' })).toThrow(/instanceTypes/)
    expect(() => settings({ predictMemoryMb: '512' })).toThrow(/predictMemoryMb/)
  })
})

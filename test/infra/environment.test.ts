/**
 * The app synthesizes without an account or region (no credentials), and bakes in none unless asked; the
 * trainer image pins what it can (Node) and takes the CUDA base image as a build argument.
 */
import { readFileSync } from 'node:fs'
import { Token } from 'aws-cdk-lib'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApp, STACK_NAME } from '../../infra/pipeline-app.js'
import { repoPath } from '../../infra/paths.js'
import type { PipelineStack } from '../../infra/pipeline-stack.js'

const cdkJson = JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')) as { context: Record<string, unknown> }
const noBundling = { 'aws:cdk:bundling-stacks': [] }

afterEach(() => {
  vi.unstubAllEnvs()
})

function stackOf(context: Record<string, unknown>): { stack: PipelineStack; template: string } {
  const app = createApp({ context: { ...cdkJson.context, ...noBundling, trainer: false, ...context } })
  const stack = app.node.findChild(STACK_NAME) as PipelineStack
  const template = JSON.stringify(app.synth().getStackByName(STACK_NAME).template)
  return { stack, template }
}

describe('environment', () => {
  it('is environment-agnostic even when the CLI guessed a default account and region', () => {
    // GIVEN what the CDK CLI sets without a configured region
    vi.stubEnv('CDK_DEFAULT_ACCOUNT', '111122223333')
    vi.stubEnv('CDK_DEFAULT_REGION', 'us-east-1')

    const { stack, template } = stackOf({})

    expect(Token.isUnresolved(stack.region)).toBe(true)
    expect(Token.isUnresolved(stack.account)).toBe(true)
    expect(template).not.toContain('us-east-1')
    expect(template).not.toContain('111122223333')
  })

  it('deploys to the account and region named with -c account=… -c region=…', () => {
    const { stack } = stackOf({ account: '123456789012', region: 'eu-west-1' })

    expect(stack.region).toBe('eu-west-1')
    expect(stack.account).toBe('123456789012')
  })

  it('rejects a malformed region naming the key', () => {
    expect(() => stackOf({ region: 'Ireland' })).toThrow(/region: region must look like eu-west-1/)
  })
})

describe('trainer/Dockerfile', () => {
  const dockerfile = readFileSync(repoPath('trainer/Dockerfile'), 'utf8')

  it('installs an exact Node.js 22 release', () => {
    expect(dockerfile).toMatch(/^ARG NODE_DIST=v22\.\d+\.\d+$/m)
  })

  it('builds FROM the CUDA_IMAGE build argument, the one CDK passes a pinned image through', () => {
    expect(dockerfile).toMatch(/^ARG CUDA_IMAGE=\S+$/m)
    expect(dockerfile).toMatch(/^FROM \$\{CUDA_IMAGE\}$/m)
  })
})

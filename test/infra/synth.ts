/**
 * Test helpers: synthesize the pipeline stack the way infra/app.ts does (cdk.json feature flags + context),
 * and read IAM statements back in a readable form.
 * @module
 */
import { readFileSync } from 'node:fs'
import { App, type CfnResource, type Stack } from 'aws-cdk-lib'
import { Template } from 'aws-cdk-lib/assertions'
import type { IConstruct } from 'constructs'
import { PipelineStack } from '../../infra/pipeline-stack.js'
import { repoPath } from '../../infra/paths.js'
import { settingsFromContext } from '../../infra/settings.js'

const cdkJson = JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')) as { context: Record<string, unknown> }

export interface Synthesized {
  readonly app: App
  readonly stack: PipelineStack
  readonly template: Template
}

/** One synthesis (bundling included) with `context` over cdk.json's feature flags. */
export function synthPipeline(context: Record<string, unknown> = {}): Synthesized {
  const app = new App({ context: { ...cdkJson.context, ...context } })
  const stack = new PipelineStack(app, 'Test', { settings: settingsFromContext(app.node) })
  return { app, stack, template: Template.fromStack(stack) }
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(construct: IConstruct): string {
  const cfn = (construct.node.defaultChild ?? construct) as CfnResource
  const stack = cfn.stack as Stack
  return String(stack.resolve(cfn.logicalId))
}

export interface Statement {
  readonly effect: string
  readonly actions: string[]
  /** `bucket/models/*`, `bucket`, `<LogicalId>`, or `*`. */
  readonly resources: string[]
}

/** Every statement of the IAM policies attached to `role`, bucket ARNs shown as `bucket`. */
export function statementsOf(synth: Synthesized, role: IConstruct): Statement[] {
  const roleId = logicalId(role)
  const bucketId = logicalId(synth.stack.data.bucket)
  const show = (x: unknown): string => {
    if (typeof x === 'string') return x
    const o = x as Record<string, unknown>
    if (Array.isArray(o['Fn::GetAtt'])) {
      const [id] = o['Fn::GetAtt'] as string[]
      return id === bucketId ? 'bucket' : `<${id}>`
    }
    if (typeof o.Ref === 'string') return o.Ref === bucketId ? 'bucket' : `<${o.Ref}>`
    if (Array.isArray(o['Fn::Join'])) return ((o['Fn::Join'] as [string, unknown[]])[1] ?? []).map(show).join('')
    return JSON.stringify(x)
  }
  const list = <T>(v: T | T[]) => (Array.isArray(v) ? v : [v])
  const policies = Object.values(synth.template.findResources('AWS::IAM::Policy')).filter((p) =>
    (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId)
  )
  return policies.flatMap((p) =>
    (p.Properties.PolicyDocument.Statement as Record<string, unknown>[]).map((s) => ({
      effect: s.Effect as string,
      actions: list(s.Action as string | string[]),
      resources: list(s.Resource).map(show),
    }))
  )
}

/** `action` → the resources it is allowed on, across `statements`. */
export function allowed(statements: Statement[]): Map<string, string[]> {
  const map = new Map<string, string[]>()
  for (const s of statements.filter((s) => s.effect === 'Allow')) {
    for (const a of s.actions) map.set(a, [...(map.get(a) ?? []), ...s.resources].sort())
  }
  return map
}

/**
 * Log retention for every Lambda function of a stack, the CDK's own helper functions included (the
 * bucket-notifications handler, the auto-delete-objects provider): without it, Lambda creates their log
 * groups on first use with logs kept forever.
 * @module
 */
import { CfnResource, RemovalPolicy, type Stack } from 'aws-cdk-lib'
import { CfnFunction } from 'aws-cdk-lib/aws-lambda'
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs'
import type { IConstruct } from 'constructs'

/**
 * Gives each `AWS::Lambda::Function` in `stack` that has no `LoggingConfig.LogGroup` a log group of its own
 * with `retention` (deleted with the stack), created before the function, and points the function at it.
 * Call it at the end of the stack's constructor, when every function exists.
 * @returns how many functions were given one.
 */
export function retainLogsOfEveryFunction(stack: Stack, retention: RetentionDays): number {
  let count = 0
  for (const node of stack.node.findAll()) {
    if (!isFunctionResource(node) || hasLogGroup(stack, node)) continue
    const logGroup = new LogGroup(node.node.scope ?? stack, `${node.node.id}LogGroup`, {
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    })
    node.addPropertyOverride('LoggingConfig.LogGroup', logGroup.logGroupName)
    node.addResourceDependency(logGroup.node.defaultChild as CfnResource)
    count++
  }
  return count
}

function isFunctionResource(node: IConstruct): node is CfnResource {
  return CfnResource.isCfnResource(node) && node.cfnResourceType === 'AWS::Lambda::Function'
}

/** An L1 `CfnFunction` may name its log group; the CDK's raw `AWS::Lambda::Function` helpers never do. */
function hasLogGroup(stack: Stack, fn: CfnResource): boolean {
  if (!(fn instanceof CfnFunction)) return false
  const config = stack.resolve(fn.loggingConfig) as { logGroup?: unknown } | undefined
  return config?.logGroup !== undefined
}

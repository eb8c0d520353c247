/**
 * Test helpers for the Lambda entries as deployed: a Lambda context object as the runtime passes it, the
 * environment the runtime sets, and what the function printed (Powertools writes its JSON logs and EMF
 * documents through its own `Console`, not `console.log`: INFO and EMF to stdout, WARN and ERROR to stderr;
 * Lambda sends both to CloudWatch Logs).
 * @module
 */
import type { Context } from 'aws-lambda'
import { vi } from 'vitest'

/**
 * What the Lambda runtime sets that Powertools reads: without `AWS_LAMBDA_INITIALIZATION_TYPE=on-demand`
 * Powertools never reports a cold start. Call before importing the entry (the cold start).
 */
export function stubLambdaRuntimeEnv(functionName: string): void {
  vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand')
  vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', functionName)
  vi.stubEnv('AWS_LAMBDA_FUNCTION_MEMORY_SIZE', '256')
  vi.stubEnv('AWS_LAMBDA_FUNCTION_VERSION', '$LATEST')
  vi.stubEnv('AWS_REGION', 'eu-west-1')
}

let invocations = 0

/** A context as the Node.js runtime builds it; every call has a new request id. */
export function fakeContext(functionName: string, overrides: Partial<Context> = {}): Context {
  invocations++
  const awsRequestId = `c6af9ac6-7b61-11e6-9a41-93e8${String(invocations).padStart(8, '0')}`
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/12/01/[$LATEST]0123456789abcdef0123456789abcdef',
    getRemainingTimeInMillis: () => 30_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
    ...overrides,
  }
}

export interface CapturedOutput {
  /** Every line written so far that parses as a JSON object, in order. */
  json(): Record<string, unknown>[]
  /** The log lines (Powertools' `level` + `message`), without EMF documents. */
  logs(): Record<string, unknown>[]
  /** The EMF documents (those with an `_aws.CloudWatchMetrics` block). */
  emf(): EmfDocument[]
  /** Forgets what was captured. */
  clear(): void
  /** Gives stdout and stderr back. */
  restore(): void
}

export interface EmfDocument extends Record<string, unknown> {
  readonly _aws: {
    readonly Timestamp: number
    readonly CloudWatchMetrics: readonly {
      readonly Namespace: string
      readonly Dimensions: readonly (readonly string[])[]
      readonly Metrics: readonly { readonly Name: string; readonly Unit: string }[]
    }[]
  }
}

/**
 * Captures (and silences) everything written to `process.stdout` and `process.stderr`, in the order written,
 * until `restore()`.
 */
export function captureOutput(): CapturedOutput {
  let text = ''
  const capture = (chunk: string | Uint8Array) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    return true
  }
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture),
  ]
  const json = () =>
    text.split('\n').flatMap((line) => {
      if (!line.trim().startsWith('{')) return []
      try {
        return [JSON.parse(line) as Record<string, unknown>]
      } catch {
        return []
      }
    })
  return {
    json,
    logs: () => json().filter((l) => typeof l['level'] === 'string' && '_aws' in l === false),
    emf: () => json().filter((l): l is EmfDocument => typeof l['_aws'] === 'object' && l['_aws'] !== null),
    clear: () => {
      text = ''
    },
    restore: () => {
      for (const spy of spies) spy.mockRestore()
    },
  }
}

/**
 * NodeFunction: the project's defaults for a TypeScript Lambda in one place, so every function bundles,
 * logs and is permitted the same way.
 * @module
 */
import { RemovalPolicy, Validations } from 'aws-cdk-lib'
import { Role, ServicePrincipal, type IRole } from 'aws-cdk-lib/aws-iam'
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda'
import {
  NodejsFunction,
  OutputFormat,
  type BundlingOptions,
  type NodejsFunctionProps,
} from 'aws-cdk-lib/aws-lambda-nodejs'
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs'
import type { Construct } from 'constructs'

/**
 * Prepended to the ESM bundle. Bundled CommonJS code (the AWS SDK's dependencies, tfjs's emscripten glue)
 * still calls `require`, `__filename` and `__dirname`, which ES modules lack: without `__dirname` the TF.js
 * wasm backend fails to initialise and TF.js silently falls back to the slow CPU backend.
 * The aliases avoid clashing with names the bundle itself declares.
 */
export const ESM_BANNER = [
  "import { createRequire as __nfCreateRequire } from 'node:module'",
  "import { fileURLToPath as __nfFileURLToPath } from 'node:url'",
  "import { dirname as __nfDirname } from 'node:path'",
  'const require = __nfCreateRequire(import.meta.url)',
  'const __filename = __nfFileURLToPath(import.meta.url)',
  'const __dirname = __nfDirname(__filename)',
].join(';')

export interface NodeFunctionProps
  extends Omit<NodejsFunctionProps, 'runtime' | 'architecture' | 'logGroup' | 'logRetention' | 'entry'> {
  /** Absolute path of the handler module (exports `handler`). */
  readonly entry: string
  /**
   * Retention of the function's log group.
   * @default RetentionDays.ONE_MONTH - long enough to debug last week's run, short enough to cost nothing
   */
  readonly logRetention?: RetentionDays
  /**
   * `POWERTOOLS_SERVICE_NAME`: the `service` key of every log line and the `service` dimension of the metrics
   * (functions/observability.ts).
   */
  readonly serviceName: string
  /**
   * `POWERTOOLS_LOG_LEVEL`: DEBUG, INFO, WARN, ERROR or CRITICAL. (Not the deprecated `logLevel` of
   * `FunctionOptions`, which switches the runtime's own JSON logging.)
   * @default 'INFO'
   */
  readonly powertoolsLogLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'CRITICAL'
}

/**
 * A `NodejsFunction` with: Node.js 22 on x86_64 (the sharp binaries in the lock file are linux-x64), an
 * explicit log group with retention (deleted with the stack), ESM output with source maps
 * (`NODE_OPTIONS=--enable-source-maps`), bundling with the local esbuild only (no Docker), the AWS SDK
 * bundled at the lock file's version instead of the runtime's, a role that may write only its own logs, and
 * the Powertools settings (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOG_LEVEL`) the Lambda entries log with.
 *
 * `bundling` is merged over these defaults (`externalModules`, `commandHooks`, ...).
 */
export class NodeFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: NodeFunctionProps) {
    // created in the parent scope because `this` does not exist before super()
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    })
    // our own role instead of the default AWSLambdaBasicExecutionRole, which may write to any log group
    const role: IRole =
      props.role ?? new Role(scope, `${id}Role`, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') })
    const bundling: BundlingOptions = {
      format: OutputFormat.ESM,
      target: 'node22',
      mainFields: ['module', 'main'],
      banner: ESM_BANNER,
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      externalModules: [],
      forceDockerBundling: false,
      ...props.bundling,
    }
    const { serviceName, powertoolsLogLevel, ...rest } = props
    super(scope, id, {
      ...rest,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.X86_64,
      logGroup,
      role,
      bundling,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: serviceName,
        POWERTOOLS_LOG_LEVEL: powertoolsLogLevel ?? 'INFO',
        ...props.environment,
      },
    })
    logGroup.grantWrite(role)
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 (LTS, supported by Lambda into 2027) on purpose: it matches the trainer image and the ' +
        'esbuild target; upgrade the runtime, `target` and trainer/Dockerfile together',
    })
  }
}

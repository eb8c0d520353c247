/**
 * The predict function's configuration, parsed once from the environment at each entry (Lambda cold start,
 * `server.ts` run directly); a bad value fails the start naming the variable.
 * @module
 */
import { z } from 'zod'
import { BackendChoice } from '../../core/engine/index.js'
import { parseSettings } from '../../core/zod-issues.js'

/** Thrown at start when the environment is incomplete or wrong; the message names every bad variable. */
export { ConfigError } from '../../core/errors.js'

const refreshSeconds = z.coerce
  .number({ error: 'must be a number of seconds' })
  .int('must be a whole number of seconds')
  .min(0, 'must be 0 or more')
  .default(60)

const LambdaEnv = z.object({
  STORE_BUCKET: z
    .string({ error: 'required: the bucket holding models/' })
    .trim()
    .min(1, 'required: the bucket holding models/'),
  MODEL_REFRESH_SECONDS: refreshSeconds,
  WASM_PATH: z.string().trim().min(1).optional(),
})

export interface LambdaConfig {
  readonly bucket: string
  /** Least time between two reads of models/latest.json. */
  readonly refreshSeconds: number
  /** Folder (URL or path, ending in `/`) holding the TF.js `.wasm` files. @default - the installed package's */
  readonly wasmPath?: string
}

/** @example const config = parseLambdaConfig(process.env) */
export function parseLambdaConfig(env: Readonly<Record<string, string | undefined>>): LambdaConfig {
  const e = parse(LambdaEnv, env, 'predict function')
  return {
    bucket: e.STORE_BUCKET,
    refreshSeconds: e.MODEL_REFRESH_SECONDS,
    ...(e.WASM_PATH ? { wasmPath: e.WASM_PATH } : {}),
  }
}

const ServerEnv = z
  .object({
    STORE_URI: z.string().trim().min(1).optional(),
    STORE_BUCKET: z.string().trim().min(1).optional(),
    PORT: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535).default(8080),
    HOST: z.string().trim().min(1).default('127.0.0.1'),
    MODEL_REFRESH_SECONDS: refreshSeconds,
    AGEGENDER_BACKEND: BackendChoice.default('auto'),
  })
  .refine((e) => e.STORE_URI !== undefined || e.STORE_BUCKET !== undefined, {
    message: 'set STORE_URI (s3://bucket or a folder) or STORE_BUCKET',
    path: ['STORE_URI'],
  })

export interface ServerConfig {
  /** `s3://bucket[/prefix]`, `file:///dir` or a folder path. */
  readonly storeUri: string
  readonly port: number
  readonly hostname: string
  readonly refreshSeconds: number
  readonly backend: BackendChoice
}

/** For `tsx functions/predict/server.ts`: `STORE_URI` wins over `STORE_BUCKET` (read as `s3://<bucket>`). */
export function parseServerConfig(env: Readonly<Record<string, string | undefined>>): ServerConfig {
  const e = parse(ServerEnv, env, 'predict server')
  return {
    storeUri: e.STORE_URI ?? `s3://${e.STORE_BUCKET}`,
    port: e.PORT,
    hostname: e.HOST,
    refreshSeconds: e.MODEL_REFRESH_SECONDS,
    backend: e.AGEGENDER_BACKEND,
  }
}

function parse<S extends z.ZodType>(
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
  what: string
): z.infer<S> {
  return parseSettings(schema, env, `${what} environment`, '')
}

/**
 * The predict API's client-facing errors: each has an HTTP status and a stable `code`, and is answered as
 * `{ "error": { "code", "message", "hint"? } }` by the app's one `onError`.
 * @module
 */
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

export type ErrorCode =
  | 'missing_image'
  | 'too_many_images'
  | 'bad_mode'
  | 'mode_unavailable'
  | 'unreadable_image'
  | 'bad_base64'
  | 'malformed_json'
  | 'malformed_body'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'no_model'
  | 'model_unavailable'
  | 'not_found'
  | 'internal_error'

export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly hint?: string }
}

/** A request the API refuses; thrown anywhere below a route, answered by `onError`. */
export class ApiError extends HTTPException {
  override readonly name = 'ApiError'
  constructor(
    override readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string
  ) {
    super(status, { message })
  }

  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) } }
  }
}

export const errorBody = (code: ErrorCode, message: string, hint?: string): ErrorBody => ({
  error: { code, message, ...(hint ? { hint } : {}) },
})

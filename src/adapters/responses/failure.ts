import { GatewayError } from '../../errors.ts'
import type { ResponseError } from './types.ts'

// How a failed answer is told to Responses clients (wire-apis §1.7). Codex decides from `error.code` alone:
// context_length_exceeded stops and tells the user, insufficient_quota stops, rate_limit_exceeded waits for the
// "try again in Ns" of the message, invalid_prompt is not retried; anything else (server_error) is retried.

const isContextOverflow = (error: GatewayError) =>
  error.errorType === 'upstream_context_length' || /context_length/i.test(error.code ?? '')

function retryDelaySeconds (error: GatewayError): number {
  const header = Number(error.headers['retry-after'])
  return Number.isFinite(header) && header > 0 ? Math.ceil(header) : 1
}

/** The `error` of a `response.failed` event for a failure after the stream started. */
export function responseError (error: GatewayError): ResponseError {
  if (isContextOverflow(error)) return { code: 'context_length_exceeded', message: error.message }
  if (error.errorType === 'upstream_quota' || error.type === 'insufficient_quota') return { code: 'insufficient_quota', message: error.message }
  if (error.errorType === 'upstream_rate_limit' || error.statusCode === 429) {
    const message = /try again in/i.test(error.message) ? error.message : `${error.message} Please try again in ${retryDelaySeconds(error)}s.`
    return { code: 'rate_limit_exceeded', message }
  }
  // A request the upstream refuses as it stands fails the same way when retried.
  if (error.statusCode >= 400 && error.statusCode < 500 && error.statusCode !== 408 && error.statusCode !== 409) {
    return { code: 'invalid_prompt', message: error.message }
  }
  return { code: 'server_error', message: error.message }
}

/** An error before the first byte, in the envelope's terms: a context overflow is a 400 `context_length_exceeded`. */
export function requestError (error: unknown): unknown {
  if (!(error instanceof GatewayError) || !isContextOverflow(error)) return error
  return new GatewayError({
    statusCode: 400,
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    param: 'input',
    message: error.message,
    source: error.source,
    headers: { ...error.headers, 'x-should-retry': 'false' },
    errorType: error.errorType,
    upstream: error.upstream ?? undefined,
    cause: error
  })
}

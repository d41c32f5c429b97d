// One catalogue of the errors the gateway itself raises, and the OpenAI envelope they become.
// Upstream errors are mapped into the same class by src/adapters/upstream-errors.ts.

export interface ErrorBody {
  message: string
  type: string
  param: string | null
  code: string | null
}

export interface ErrorEnvelope {
  error: ErrorBody
}

/** Where an error comes from: the gateway itself or the upstream it called. */
export type ErrorSource = 'gateway' | 'upstream'

export interface GatewayErrorInit extends Partial<Omit<ErrorBody, 'message'>> {
  statusCode: number
  message: string
  source?: ErrorSource
  /** Extra response headers, for example retry-after. */
  headers?: Record<string, string>
  /** Closed vocabulary for metrics (upstream_auth, upstream_5xx ...). */
  errorType?: string
  /** For errors the upstream answered: its status and its own words, before the gateway described them. */
  upstream?: UpstreamSaid
  cause?: unknown
}

export interface UpstreamSaid {
  status: number
  message: string
  type: string
  code: string | null
}

export class GatewayError extends Error {
  override name = 'GatewayError'
  readonly statusCode: number
  readonly type: string
  readonly param: string | null
  readonly code: string | null
  readonly source: ErrorSource
  readonly headers: Record<string, string>
  readonly errorType: string
  readonly upstream: UpstreamSaid | null

  constructor (init: GatewayErrorInit) {
    super(init.message, { cause: init.cause })
    this.statusCode = init.statusCode
    this.type = init.type ?? typeForStatus(init.statusCode)
    this.param = init.param ?? null
    this.code = init.code ?? null
    this.source = init.source ?? 'gateway'
    this.headers = init.headers ?? {}
    this.errorType = init.errorType ?? 'other'
    this.upstream = init.upstream ?? null
  }

  toJSON (): ErrorEnvelope {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}

export function typeForStatus (statusCode: number): string {
  if (statusCode === 401) return 'authentication_error'
  if (statusCode === 403) return 'permission_error'
  if (statusCode === 404) return 'not_found_error'
  if (statusCode === 429) return 'rate_limit_error'
  if (statusCode >= 500) return 'server_error'
  return 'invalid_request_error'
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new GatewayError({ statusCode: 400, type: 'invalid_request_error', message, param, code, errorType: 'client_invalid' })

export const unsupportedParameter = (param: string, why: string) =>
  invalidRequest(`'${param}' is not supported by this gateway: ${why}`, param, 'unsupported_parameter')

export const invalidClientKey = () => new GatewayError({
  statusCode: 401,
  type: 'invalid_request_error',
  code: 'invalid_api_key',
  message: 'Missing or invalid API key for this gateway. Send one of the keys in GATEWAY_API_KEYS as "Authorization: Bearer <key>".',
  errorType: 'client_auth'
})

/**
 * One text for an unknown model wherever it shows: GET /v1/models/{model} (the gateway's catalog) and every family
 * whose upstream answered that it does not know the model (src/adapters/upstream-errors.ts).
 */
export const modelNotFoundMessage = (model: string) =>
  `The model ${model === '' ? 'asked for' : `'${model}'`} does not exist or is not served by this gateway. GET /v1/models lists the models it serves.`

export const modelNotFound = (model: string) => new GatewayError({
  statusCode: 404,
  type: 'invalid_request_error',
  param: 'model',
  code: 'model_not_found',
  message: modelNotFoundMessage(model),
  errorType: 'client_invalid'
})

export const routeNotFound = (method: string, url: string) => new GatewayError({
  statusCode: 404,
  type: 'invalid_request_error',
  code: 'unknown_url',
  message: `Unknown request URL: ${method} ${url.split('?')[0]}. See GET /v1/models, POST /v1/chat/completions, /v1/completions, /v1/responses, /v1/messages and /v1/embeddings.`,
  errorType: 'client_invalid'
})

export const upstreamUnreachable = (host: string, cause: unknown) => new GatewayError({
  statusCode: 502,
  type: 'server_error',
  code: 'upstream_unreachable',
  message: `The upstream ${host} could not be reached.`,
  source: 'upstream',
  errorType: 'upstream_network',
  cause
})

export const upstreamConnectionLost = (host: string, cause: unknown) => new GatewayError({
  statusCode: 502,
  type: 'server_error',
  code: 'upstream_connection_lost',
  message: `The connection to the upstream ${host} broke in the middle of the answer.`,
  source: 'upstream',
  errorType: 'upstream_network',
  cause
})

export const upstreamTimeout = (host: string, phase: 'headers' | 'body' | 'connect', cause: unknown) => new GatewayError({
  statusCode: 504,
  type: 'server_error',
  code: 'upstream_timeout',
  message: phase === 'body'
    ? `The upstream ${host} stopped sending data for longer than the idle timeout.`
    : `The upstream ${host} did not answer in time (${phase} timeout).`,
  source: 'upstream',
  errorType: 'upstream_timeout',
  cause
})

export const upstreamProtocol = (host: string, what: string, cause?: unknown) => new GatewayError({
  statusCode: 502,
  type: 'server_error',
  code: 'upstream_protocol_error',
  message: `The upstream ${host} sent an answer the gateway could not read: ${what}.`,
  source: 'upstream',
  errorType: 'upstream_protocol',
  cause
})

export const internalError = () => new GatewayError({
  statusCode: 500,
  type: 'server_error',
  code: 'internal_error',
  message: 'The gateway hit an internal error. It has been logged; please retry.',
  errorType: 'gateway_internal'
})

/** One upstream SSE event outgrew MAX_FRAME_BYTES: the stream ends rather than buffering on. */
export const upstreamFrameTooLarge = (host: string, maxBytes: number) => new GatewayError({
  statusCode: 502,
  type: 'server_error',
  code: 'upstream_frame_too_large',
  message: `The upstream ${host} sent an SSE event larger than MAX_FRAME_BYTES (${maxBytes} bytes); the stream was stopped. Raise MAX_FRAME_BYTES if the upstream really sends events this large.`,
  source: 'upstream',
  errorType: 'upstream_protocol'
})

/** A stream still open when the shutdown grace period (SHUTDOWN_GRACE_MS) ran out. */
export const gatewayShuttingDown = () => new GatewayError({
  statusCode: 503,
  type: 'server_error',
  code: 'gateway_shutting_down',
  message: 'The gateway is shutting down and its grace period (SHUTDOWN_GRACE_MS) ran out before this answer was complete. Retry the request.',
  headers: { 'x-should-retry': 'true' },
  errorType: 'gateway_shutdown'
})

import { GatewayError, modelNotFoundMessage, typeForStatus } from '../errors.ts'
import type { PenaltyInput, PenaltyReason, Refusal } from '../upstream/key-ring.ts'

// DashScope sends errors in three shapes (wire contract §1.8): OpenAI's {"error":{...}}, native unwrapped
// {"code","message","request_id"}, and HTML pages from its load balancers. vLLM sends
// {"object":"error","message","type","code":400}; Ollama {"error":"text"}. All become one envelope.

export interface UpstreamContext {
  /** The upstream's name in the topology (`dashscope` unless GATEWAY_CONFIG names it). */
  name: string
  host: string
  keyCount: number
  /** false: the upstream has no tool calling, the gateway speaks an XML tool protocol with it. */
  nativeTools: boolean
}

interface Fields {
  message: string | null
  type: string | null
  code: string | null
  param: string | null
}

const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null)

export function readErrorFields (payload: unknown): Fields | null {
  if (payload === null || typeof payload !== 'object') return null
  const body = payload as Record<string, unknown>
  const inner = body.error
  if (typeof inner === 'string') return { message: inner, type: null, code: str(body.code), param: null }
  if (inner && typeof inner === 'object') {
    const error = inner as Record<string, unknown>
    return { message: str(error.message), type: str(error.type), code: str(error.code), param: str(error.param) }
  }
  if ('message' in body || 'code' in body) {
    return { message: str(body.message), type: str(body.type), code: str(body.code), param: str(body.param) }
  }
  return null
}

const QUOTA_CODES = /insufficient_quota|AllocationQuota|Arrearage|FreeTierOnly/i
// A model's own free quota is spent; the account's other models are unaffected.
const MODEL_QUOTA_CODES = /FreeTierOnly/i
const CONTEXT_LENGTH = /context_length|Range of input length|maximum context length|too many tokens/i

/** The closed error_type vocabulary used by metrics. */
export function classify (status: number, fields: Fields): string {
  const code = fields.code ?? ''
  if (QUOTA_CODES.test(code)) return 'upstream_quota'
  if (status === 401 || status === 403) return 'upstream_auth'
  if (status === 429) return 'upstream_rate_limit'
  if (status >= 500) return 'upstream_5xx'
  if (/data_inspection_failed|content_filter/i.test(code)) return 'upstream_content_filter'
  if (CONTEXT_LENGTH.test(code) || CONTEXT_LENGTH.test(fields.message ?? '')) return 'upstream_context_length'
  return 'upstream_bad_request'
}

function describe (status: number, fields: Fields, context: UpstreamContext, errorType: string): string {
  const said = fields.message ?? `HTTP ${status} without an error message`
  if (errorType === 'upstream_auth') {
    const keys = context.keyCount === 0
      ? 'the gateway has no DASHSCOPE_API_KEY configured'
      : 'the gateway\'s DASHSCOPE_API_KEY was refused (keys are bound to a region; check DASHSCOPE_BASE_URL)'
    return `The upstream ${context.host} rejected the gateway's credentials: ${keys}. Upstream said: ${said}`
  }
  return fields.message ?? `The upstream ${context.host} answered HTTP ${status}.`
}

// An upstream that does not know the model: DashScope and OpenAI say code model_not_found ("The model `x` does not
// exist or you do not have access to it."), vLLM a 404 "The model `x` does not exist.", Ollama a 404 'model "x" not
// found, try pulling it first'. All get the text GET /v1/models/{model} gives, naming the model the upstream named.
const MODEL_NOT_FOUND_CODE = /^model_?not_?found$/i
const MODEL_NOT_FOUND_TEXT = /\bmodel\b.*\b(?:does not exist|not found)\b/i
const NAMED_MODEL = /\bmodel\s+[`'"]([^`'"]+)[`'"]/i

/** The model the upstream says it does not know, '' when it did not name it, or null when the error is another. */
export function unknownModel (status: number, fields: Fields): string | null {
  const message = fields.message ?? ''
  if (!MODEL_NOT_FOUND_CODE.test(fields.code ?? '') && !(status === 404 && MODEL_NOT_FOUND_TEXT.test(message))) return null
  return NAMED_MODEL.exec(message)?.[1] ?? ''
}

// Retrying cannot fix these, so tell OpenAI SDKs not to (they otherwise retry 429 and 5xx).
const NOT_RETRYABLE = new Set(['upstream_quota', 'upstream_auth', 'upstream_bad_request', 'upstream_content_filter', 'upstream_context_length'])

export function errorFromUpstream (status: number, fields: Fields | null, context: UpstreamContext, retryAfter?: string): GatewayError {
  const known = fields ?? { message: null, type: null, code: null, param: null }
  const errorType = classify(status, known)
  const headers: Record<string, string> = { 'x-should-retry': NOT_RETRYABLE.has(errorType) ? 'false' : 'true' }
  if (errorType === 'upstream_rate_limit' && retryAfter) headers['retry-after'] = retryAfter
  const statusCode = status >= 400 && status <= 599 ? status : 502
  const type = errorType === 'upstream_quota' ? 'insufficient_quota' : (known.type ?? typeForStatus(status))
  const model = errorType === 'upstream_bad_request' ? unknownModel(status, known) : null
  return new GatewayError({
    statusCode,
    message: model === null ? describe(status, known, context, errorType) : modelNotFoundMessage(model),
    type: model === null ? type : 'invalid_request_error',
    code: model === null ? known.code : 'model_not_found',
    param: model === null ? known.param : 'model',
    source: 'upstream',
    headers,
    errorType,
    upstream: { status: statusCode, message: known.message ?? `HTTP ${status} without an error message`, type, code: known.code }
  })
}

/**
 * What an upstream failure says about the key that was used, or null when it says nothing (a 404 for an unknown
 * model, a bad request, a 5xx). An invalid key, an account out of quota or in arrears: the whole key. Access
 * denied for a model, a rate limit (DashScope limits each model separately) or a model's own free quota: that
 * model on that key only.
 */
export function penaltyFor (error: GatewayError): PenaltyInput | null {
  const said = error.upstream
  if (said === null) return null
  switch (error.errorType) {
    case 'upstream_rate_limit':
      return { scope: 'model', reason: 'rate_limited' }
    case 'upstream_quota':
      return { scope: MODEL_QUOTA_CODES.test(said.code ?? '') ? 'model' : 'key', reason: 'quota', refusal: said }
    case 'upstream_auth':
      return said.status === 403
        ? { scope: 'model', reason: 'access_denied', refusal: said }
        : { scope: 'key', reason: 'refused', refusal: said }
    default:
      return null
  }
}

/** The answer while every key that could serve a request is set aside by the upstream's refusals. */
export function refusedEverywhere (refusal: Refusal | null, reason: PenaltyReason, model: string, context: UpstreamContext): GatewayError {
  const said = refusal ?? { status: reason === 'quota' ? 429 : reason === 'access_denied' ? 403 : 401, message: 'no message', type: 'invalid_request_error', code: null }
  const which = reason === 'access_denied' || (reason === 'quota' && MODEL_QUOTA_CODES.test(said.code ?? '')) ? ` for ${model}` : ''
  const refused = reason === 'refused'
    ? 'rejected the gateway\'s credentials: it refused every configured key (DashScope keys are bound to a region: check DASHSCOPE_API_KEY against DASHSCOPE_BASE_URL)'
    : `refused every configured key${which}`
  return new GatewayError({
    statusCode: said.status,
    message: `The upstream ${context.host} ${refused}; the gateway asks again later, not on every request. Upstream said: ${said.message}`,
    type: said.type,
    code: said.code,
    source: 'upstream',
    headers: { 'x-should-retry': 'false' },
    errorType: reason === 'quota' ? 'upstream_quota' : 'upstream_auth',
    upstream: said
  })
}

/** An upstream answer body read as text: JSON error shapes are understood, anything else (HTML) is not echoed. */
export function errorFromUpstreamBody (status: number, text: string, context: UpstreamContext, retryAfter?: string): GatewayError {
  let fields: Fields | null = null
  try {
    fields = readErrorFields(JSON.parse(text))
  } catch {
    // An HTML error page from a load balancer: its markup is no use to an API client.
  }
  return errorFromUpstream(status, fields, context, retryAfter)
}

/** Errors inside a stream carry no HTTP status; DashScope's codes say what kind they are. */
export function statusForStreamError (code: string | null): number {
  if (!code) return 500
  if (QUOTA_CODES.test(code) || /Throttling|limit_requests|rate_limit/i.test(code)) return 429
  if (/InvalidApiKey|invalid_api_key/i.test(code)) return 401
  if (/AccessDenied|access_denied/i.test(code)) return 403
  if (/data_inspection_failed|content_filter|Invalid|context_length/i.test(code)) return 400
  return 500
}

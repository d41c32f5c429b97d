import type { GatewayError } from '../../errors.ts'

// Errors in Anthropic's envelope and status table (wire-apis §2.7). Claude Code recovers from two of them by their
// wording: context overflow (it compacts) and input + max_tokens over the limit (it lowers max_tokens and retries).

export interface AnthropicErrorBody {
  type: 'error'
  error: { type: string, message: string }
  request_id: string
}

export interface AnthropicError {
  statusCode: number
  body: AnthropicErrorBody
}

const OVERLOADED = 529

/** The status Anthropic would answer: an overloaded upstream or gateway (503) is its 529. */
export function anthropicStatus (error: Pick<GatewayError, 'statusCode' | 'errorType'>): number {
  if (error.statusCode === 503 || error.errorType === 'gateway_overloaded') return OVERLOADED
  return error.statusCode
}

export function errorTypeFor (status: number): string {
  switch (status) {
    case 401: return 'authentication_error'
    case 402: return 'billing_error'
    case 403: return 'permission_error'
    case 404: return 'not_found_error'
    case 408:
    case 504: return 'timeout_error'
    case 413: return 'request_too_large'
    case 429: return 'rate_limit_error'
    case OVERLOADED: return 'overloaded_error'
  }
  return status >= 500 ? 'api_error' : 'invalid_request_error'
}

// What upstreams say when the prompt does not fit: DashScope "Range of input length should be [1, 129024]";
// vLLM and OpenAI "maximum context length is 32768 tokens. However, you requested 33000 tokens (1000 in the
// messages, 32000 in the completion)".
const DASHSCOPE_RANGE = /Range of input length should be \[\s*\d+\s*,\s*(\d+)\s*\]/i
const MAXIMUM = /maximum context length is (\d+)/i
const ASKED = /(?:resulted in|you requested|requested|contains|has) (\d+) tokens/i
const SPLIT = /(\d+) (?:tokens )?in the messages, (\d+) (?:tokens )?in the completion/i

const number = (pattern: RegExp, text: string, group = 1) => {
  const match = pattern.exec(text)
  return match ? Number(match[group]) : null
}

/**
 * Claude Code's wording for a prompt that does not fit. The prompt size comes from the upstream when it says, else
 * from the gateway's estimate (never below the limit, or the sentence would contradict itself).
 */
export function contextOverflowMessage (said: string, estimate: () => number): string {
  const limit = number(DASHSCOPE_RANGE, said) ?? number(MAXIMUM, said)
  const messages = number(SPLIT, said, 1)
  const completion = number(SPLIT, said, 2)
  if (limit !== null && messages !== null && completion !== null && messages <= limit) {
    return `input length and \`max_tokens\` exceed context limit: ${messages} + ${completion} > ${limit}`
  }
  const asked = messages ?? number(ASKED, said)
  if (limit === null) return `prompt is too long: ${asked ?? estimate()} tokens. ${said}`
  return `prompt is too long: ${Math.max(asked ?? estimate(), limit + 1)} tokens > ${limit} maximum`
}

/**
 * The Anthropic error for a gateway error: status per §2.7, upstream messages passed through unchanged, except a
 * context overflow, worded as Claude Code expects.
 */
export function toAnthropicError (error: GatewayError, requestId: string, estimate: () => number = () => 0): AnthropicError {
  const statusCode = anthropicStatus(error)
  let message = error.message
  if (error.errorType === 'upstream_context_length') message = contextOverflowMessage(error.upstream?.message ?? error.message, estimate)
  // The gateway's own key check: Anthropic clients send the key as x-api-key as often as a Bearer token.
  if (error.errorType === 'client_auth') message = 'Missing or invalid API key for this gateway. Send one of the keys in GATEWAY_API_KEYS as "x-api-key: <key>" or "Authorization: Bearer <key>".'
  return { statusCode, body: { type: 'error', error: { type: errorTypeFor(statusCode), message }, request_id: requestId } }
}

/**
 * An OpenAI error envelope someone sent directly (`{"error":{"message","type",...}}`), in Anthropic's shape; null
 * for anything else, including a body already in Anthropic's shape.
 */
export function fromOpenAIEnvelope (payload: string, statusCode: number, requestId: string): AnthropicErrorBody | null {
  let parsed: any
  try {
    parsed = JSON.parse(payload)
  } catch {
    return null
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.type === 'error') return null
  const inner = parsed.error
  const message = typeof inner?.message === 'string'
    ? inner.message
    : typeof parsed.message === 'string' ? parsed.message : typeof inner === 'string' ? inner : null
  if (message === null) return null
  return { type: 'error', error: { type: errorTypeFor(statusCode), message }, request_id: requestId }
}

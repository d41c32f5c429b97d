import { invalidRequest, unsupportedParameter, type GatewayError } from '../../errors.ts'
import { inputMessages } from './input.ts'
import type { ReasoningSealer } from './reasoning-token.ts'
import { chatToolChoice, chatTools, type ToolNames } from './tools.ts'
import type { Item } from './types.ts'

// A Responses request as the chat request the pipeline sends (wire-apis §1.2). Fields the Responses API owns are
// consumed here; anything else the client sent (provider extras such as enable_search or top_k) goes on as it came.

export type ResponsesBody = Record<string, any> & { model: string }

const CONSUMED = new Set([
  'model', 'input', 'instructions', 'previous_response_id', 'store', 'include', 'tools', 'tool_choice',
  'parallel_tool_calls', 'max_output_tokens', 'reasoning', 'text', 'stream', 'stream_options', 'truncation',
  'service_tier', 'prompt', 'conversation', 'background', 'metadata', 'prompt_cache_key', 'prompt_cache_retention',
  'safety_identifier', 'max_tool_calls', 'top_logprobs', 'client_metadata', 'context_management'
])

// reasoning.effort in chat terms; `none` and `minimal` turn thinking off (Codex's "minimal" means no thinking).
const EFFORT: Record<string, string> = { none: 'none', minimal: 'none', low: 'low', medium: 'medium', high: 'high', xhigh: 'high' }

/** What cannot be served at all: conversations and background mode live on OpenAI's side. */
export function refuseUnsupported (body: ResponsesBody): GatewayError | null {
  if (body.conversation != null) return unsupportedParameter('conversation', 'conversation objects are not stored here; use previous_response_id or send the history')
  if (body.background === true) return unsupportedParameter('background', 'there is no background mode; send the request with stream or wait for the answer')
  return null
}

/** The request's own input items: a string is one user message. */
export function requestItems (input: unknown): Item[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: input }] }]
  if (Array.isArray(input)) return input as Item[]
  return []
}

/** text.format as chat's response_format; plain text needs none. */
export function responseFormat (text: unknown): Record<string, unknown> | undefined {
  const format = (text as { format?: Record<string, any> } | undefined)?.format
  if (!format || typeof format !== 'object') return undefined
  if (format.type === 'json_object') return { type: 'json_object' }
  if (format.type !== 'json_schema') return undefined
  if (typeof format.name !== 'string' || format.name === '') throw invalidRequest('text.format.name is required for json_schema.', 'text.format.name')
  const schema: Record<string, unknown> = { name: format.name, schema: format.schema ?? {} }
  if (typeof format.strict === 'boolean') schema.strict = format.strict
  if (typeof format.description === 'string') schema.description = format.description
  return { type: 'json_schema', json_schema: schema }
}

export interface TranslatedRequest {
  chat: Record<string, unknown>
  names: ToolNames
  /** The request offers tools the model may call (XML tool parsing for upstreams without native tools). */
  usesTools: boolean
}

/**
 * The chat body for a Responses request whose conversation (previous responses' items, then this request's input,
 * item references already resolved) is `items`.
 */
export function chatRequest (body: ResponsesBody, items: Item[], sealer: ReasoningSealer): TranslatedRequest {
  const { tools, names } = chatTools(body.tools)
  const messages = inputMessages(items, { names, sealer })
  if (typeof body.instructions === 'string' && body.instructions !== '') messages.unshift({ role: 'system', content: body.instructions })
  if (messages.length === 0) throw invalidRequest('input must contain at least one message.', 'input')

  const chat: Record<string, unknown> = { model: body.model, messages }
  for (const [key, value] of Object.entries(body)) if (!CONSUMED.has(key) && value !== undefined) chat[key] = value
  if (tools.length > 0) {
    chat.tools = tools
    const choice = chatToolChoice(body.tool_choice, names)
    if (choice !== undefined) chat.tool_choice = choice
    // DashScope defaults to one call per turn; the Responses API defaults to parallel calls.
    chat.parallel_tool_calls = body.parallel_tool_calls !== false
  }
  if (typeof body.max_output_tokens === 'number') chat.max_tokens = body.max_output_tokens
  const effort = EFFORT[body.reasoning?.effort as string]
  if (effort) chat.reasoning_effort = effort
  const format = responseFormat(body.text)
  if (format) chat.response_format = format
  if (body.stream === true) chat.stream = true
  return { chat, names, usesTools: tools.length > 0 && chat.tool_choice !== 'none' }
}

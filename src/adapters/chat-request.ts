import type { ChatCompletionRequest } from '../schemas/chat.ts'
import type { ModelLimits } from '../model-limits.ts'
import { toXmlToolRequest } from './xml-tools/request.ts'

const INCLUDE_USAGE = Buffer.from(',"stream_options":{"include_usage":true}}')

// reasoning_effort in DashScope's terms (wire contract §1.3, §4). `high` leaves the budget to the model.
const THINKING: Record<string, { enable_thinking: boolean, thinking_budget?: number }> = {
  none: { enable_thinking: false },
  minimal: { enable_thinking: true, thinking_budget: 256 },
  low: { enable_thinking: true, thinking_budget: 1024 },
  medium: { enable_thinking: true, thinking_budget: 8192 },
  high: { enable_thinking: true }
}

type Body = ChatCompletionRequest & Record<string, unknown>

const wantsUsageAdded = (body: Body) => body.stream === true && body.stream_options?.include_usage !== true
const hasToolContent = (body: Body) =>
  'tools' in body || 'tool_choice' in body || 'parallel_tool_calls' in body ||
  body.messages.some(message => message.role === 'tool' || (message.tool_calls?.length ?? 0) > 0)

/**
 * `reasoning_effort` becomes DashScope's `enable_thinking` and `thinking_budget`, and is not sent on: DashScope
 * rejects `reasoning_effort` beside `thinking_budget`. A client that set `enable_thinking` or `thinking_budget`
 * itself keeps its own choice. Returns the same object when there is nothing to map.
 */
export function mapReasoningEffort (body: Body): Body {
  const effort = body.reasoning_effort
  if (typeof effort !== 'string') return body
  const { reasoning_effort: _dropped, ...rest } = body
  const thinking = THINKING[effort]
  if (!thinking || 'enable_thinking' in body || 'thinking_budget' in body) return rest as Body
  return { ...rest, ...thinking } as Body
}

/** Whether a chat body turns thinking on (DashScope's switch, or an effort that maps to it). */
export function asksForThinking (body: Record<string, unknown>): boolean {
  if (typeof body.enable_thinking === 'boolean') return body.enable_thinking
  return typeof body.reasoning_effort === 'string' && THINKING[body.reasoning_effort]?.enable_thinking === true
}

/**
 * The bodies to send upstream for a chat request, per target. Streams always ask for usage (so tokens are counted
 * even when the client did not ask; the extra chunk is dropped on the way back). Otherwise the client's bytes go out
 * as they came, so upstream prefix caches see the same request every time. An alias or a fallback under another
 * id, a mapped `reasoning_effort`, or an upstream without native tools need a re-serialised body, which keeps the
 * client's key order: the same request always becomes the same bytes.
 */
export function chatPayloads (raw: Buffer, body: Body): (model: string, nativeTools: boolean) => Buffer | string {
  const mapped = mapReasoningEffort(body)
  const addUsage = wantsUsageAdded(body)
  const withTools = hasToolContent(body)
  let own: Buffer | string | null = null
  if (mapped === body) {
    if (!addUsage) own = raw
    // Append the field before the closing brace instead of re-serialising: every other byte stays the same.
    else if (!('stream_options' in body)) own = Buffer.concat([raw.subarray(0, raw.lastIndexOf('}')), INCLUDE_USAGE])
  }
  return (model, nativeTools) => {
    const xml = withTools && !nativeTools
    if (own !== null && model === body.model && !xml) return own
    let out: Body = { ...mapped, model }
    if (addUsage) out.stream_options = { ...body.stream_options, include_usage: true }
    if (xml) out = toXmlToolRequest(out) as Body
    return JSON.stringify(out)
  }
}

export interface TranslatedPayloadOptions {
  limits: ModelLimits
  /** Ask the model's whole output budget when the request set none (Codex never does, and fails a cut-short turn). */
  fillMaxTokens?: boolean
}

const THINKING_FIELDS = ['enable_thinking', 'thinking_budget', 'reasoning_effort']

/**
 * The messages without earlier turns' `reasoning_content`, for models that do not think (Qwen-Coder, qwen-max): they
 * have no use for it. The same array when there is none to drop.
 */
export function withoutPriorReasoning (messages: unknown): unknown {
  if (!Array.isArray(messages) || !messages.some(message => typeof message === 'object' && message !== null && 'reasoning_content' in message)) return messages
  return messages.map(message => {
    if (typeof message !== 'object' || message === null || !('reasoning_content' in message)) return message
    const { reasoning_content: _dropped, ...rest } = message as Record<string, unknown>
    return rest
  })
}

/**
 * The bodies to send upstream for a chat request another API family translated (Responses, Anthropic Messages):
 * per target, the upstream's model id; `max_tokens` clamped to what that model can give (or filled in); for models
 * without thinking (Qwen-Coder) no thinking switch and no earlier turns' reasoning; `reasoning_effort` mapped; usage asked for on streams; and the XML
 * tool protocol for upstreams without native tools.
 */
export function translatedPayloads (body: Record<string, unknown>, options: TranslatedPayloadOptions): (model: string, nativeTools: boolean) => string {
  const withTools = Array.isArray(body.tools) && body.tools.length > 0
  return (model, nativeTools) => {
    let out: Record<string, unknown> = { ...body, model }
    const ceiling = options.limits.maxOutputTokens(model)
    const asked = typeof out.max_tokens === 'number' ? out.max_tokens : null
    if (ceiling !== null && (asked === null ? options.fillMaxTokens === true : asked > ceiling)) out.max_tokens = ceiling
    if (options.limits.thinks(model)) out = mapReasoningEffort(out as Body)
    else {
      for (const field of THINKING_FIELDS) delete out[field]
      out.messages = withoutPriorReasoning(out.messages)
    }
    if (out.stream === true) out.stream_options = { include_usage: true }
    if (withTools && !nativeTools) out = toXmlToolRequest(out)
    return JSON.stringify(out)
  }
}

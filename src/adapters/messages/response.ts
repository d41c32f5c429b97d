import { createHash } from 'node:crypto'
import type { ChatCompletion } from '../chunk-transforms.ts'
import type { Usage } from '../usage.ts'
import { newMessageId, toClientToolId } from './ids.ts'

// A chat answer in Anthropic's terms (wire-apis §2.4, §2.7, §4.2, §4.3).

export interface AnthropicUsage {
  input_tokens: number
  output_tokens: number
  cache_creation_input_tokens: number
  cache_read_input_tokens: number
}

export type ContentBlock =
  | { type: 'thinking', thinking: string, signature: string }
  | { type: 'text', text: string }
  | { type: 'tool_use', id: string, name: string, input: Record<string, unknown> }

export interface AnthropicMessage {
  id: string
  type: 'message'
  role: 'assistant'
  model: string
  content: ContentBlock[]
  stop_reason: string
  stop_sequence: string | null
  usage: AnthropicUsage
}

const count = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0)

/**
 * Anthropic counts cached and cache-written tokens apart from `input_tokens`; chat counts them inside
 * `prompt_tokens`. Claude Code adds the three up for its context meter, so the sum stays the prompt.
 */
export function anthropicUsage (usage: Usage | null | undefined): AnthropicUsage {
  const record = (usage ?? {}) as Usage & Record<string, unknown>
  const details = (record.prompt_tokens_details ?? {}) as Record<string, unknown>
  const cached = count(details.cached_tokens ?? record.cache_read_input_tokens)
  const written = count(details.cache_creation_input_tokens ?? record.cache_creation_input_tokens)
  return {
    input_tokens: Math.max(0, count(record.prompt_tokens) - cached - written),
    output_tokens: count(record.completion_tokens),
    cache_creation_input_tokens: written,
    cache_read_input_tokens: cached
  }
}

export const EMPTY_USAGE: AnthropicUsage = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }

/**
 * chat finish_reason → stop_reason. A tool call emitted means `tool_use` whatever the upstream said (Claude Code runs
 * no tool after `end_turn`: LiteLLM #34692), except when the answer was cut short: the call is then incomplete.
 */
export function stopReason (finish: string | null | undefined, calledTools: boolean): string {
  if (finish === 'length') return 'max_tokens'
  if (calledTools || finish === 'tool_calls' || finish === 'function_call') return 'tool_use'
  if (finish === 'content_filter') return 'refusal'
  return 'end_turn'
}

/**
 * The signature of a thinking block the gateway wrote: a digest of its text, so the same thinking always carries the
 * same signature. Clients only hand it back (the AI SDK replays thinking only when it got one); the thinking text
 * itself travels in the block, so nothing needs to be recovered from it.
 */
export const thinkingSignature = (thinking: string) =>
  `qg1.${createHash('sha256').update(thinking).digest('base64url')}`

/** Tool arguments as the object `input` must be; null when they are not a JSON object (the caller logs it). */
export function parseToolInput (args: string): Record<string, unknown> | null {
  if (args.trim() === '') return {}
  try {
    const parsed = JSON.parse(args)
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : null
  } catch {
    return null
  }
}

export interface MessageOptions {
  /** The model name the client asked for, echoed back. */
  model: string
  /** false for `thinking.display: "omitted"`. */
  showThinking: boolean
  /** Told of a tool call whose arguments are not a JSON object (it is answered with `input: {}`). */
  onInvalidArguments?: (name: string, args: string) => void
}

/** A non-streamed chat answer as an Anthropic message: thinking, then text (if any), then tool_use blocks. */
export function toAnthropicMessage (completion: ChatCompletion, options: MessageOptions): AnthropicMessage {
  const choice = completion.choices?.[0]
  const message = choice?.message ?? {}
  const content: ContentBlock[] = []
  const reasoning = typeof message.reasoning_content === 'string' ? message.reasoning_content : ''
  if (options.showThinking && reasoning !== '') content.push({ type: 'thinking', thinking: reasoning, signature: thinkingSignature(reasoning) })
  const text = typeof message.content === 'string' ? message.content : ''
  if (text.trim() !== '') content.push({ type: 'text', text })
  const calls: any[] = Array.isArray(message.tool_calls) ? message.tool_calls : []
  for (const call of calls) {
    const name = String(call.function?.name ?? '')
    const args = String(call.function?.arguments ?? '')
    let input = parseToolInput(args)
    if (input === null) {
      options.onInvalidArguments?.(name, args)
      input = {}
    }
    content.push({ type: 'tool_use', id: toClientToolId(String(call.id)), name, input })
  }
  return {
    id: newMessageId(),
    type: 'message',
    role: 'assistant',
    model: options.model,
    content,
    stop_reason: stopReason(choice?.finish_reason, calls.length > 0),
    stop_sequence: null,
    usage: anthropicUsage(completion.usage)
  }
}

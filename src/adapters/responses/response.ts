import type { ChatCompletion } from '../chunk-transforms.ts'
import { newToolCallId } from '../tool-calls.ts'
import { newResponseCore, outputItemId, responseIdOf } from './ids.ts'
import type { ReasoningSealer } from './reasoning-token.ts'
import type { ResponsesBody } from './request.ts'
import type { ToolNames } from './tools.ts'
import type { Item, ResponseObject, ResponseStatus } from './types.ts'
import { responseUsage } from './usage.ts'

// The Response object (wire-apis §1.4) and its output items, shared by the JSON answer and the stream's events.

export interface ResponseSetup {
  core: string
  createdAt: number
  /** The model as the client named it. */
  model: string
  /** The request's parameters, to echo in the response; not its input, which a stream need not hold (it can be large). */
  body: Omit<ResponsesBody, 'input'>
  names: ToolNames
  sealer: ReasoningSealer
  /** `include` asked for reasoning.encrypted_content (Codex always does). */
  encryptReasoning: boolean
  /** reasoning.summary was set: reasoning goes out as summary parts, else as reasoning_text content. */
  summarize: boolean
}

export function responseSetup (body: ResponsesBody, names: ToolNames, sealer: ReasoningSealer, core = newResponseCore(), now = Date.now()): ResponseSetup {
  const { input: _input, ...parameters } = body
  return {
    core,
    createdAt: Math.floor(now / 1000),
    model: body.model,
    body: parameters,
    names,
    sealer,
    encryptReasoning: Array.isArray(body.include) && body.include.includes('reasoning.encrypted_content'),
    summarize: body.reasoning?.summary != null
  }
}

const orNull = (value: unknown) => (value === undefined ? null : value)

/** The response's fields, without output or usage yet: the request's parameters echoed as resolved. */
export function baseResponse (setup: ResponseSetup, status: ResponseStatus = 'in_progress'): ResponseObject {
  const { body } = setup
  const response: ResponseObject = {
    id: responseIdOf(setup.core),
    object: 'response',
    created_at: setup.createdAt,
    status,
    background: false,
    model: setup.model,
    output: [],
    error: null,
    incomplete_details: null,
    instructions: orNull(body.instructions),
    metadata: body.metadata ?? {},
    parallel_tool_calls: body.parallel_tool_calls !== false,
    temperature: orNull(body.temperature),
    top_p: orNull(body.top_p),
    tool_choice: body.tool_choice ?? 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    previous_response_id: orNull(body.previous_response_id),
    store: body.store !== false,
    text: body.text ?? { format: { type: 'text' } },
    reasoning: body.reasoning ?? { effort: null, summary: null },
    max_output_tokens: orNull(body.max_output_tokens),
    truncation: body.truncation ?? 'disabled',
    usage: null
  }
  for (const field of ['user', 'prompt_cache_key', 'safety_identifier', 'service_tier'] as const) {
    if (body[field] != null) response[field] = body[field]
  }
  return response
}

/** A finish reason as the response's terminal status (wire-apis §4.2). */
export function finishState (finishReason: string | null | undefined): Pick<ResponseObject, 'status' | 'incomplete_details'> {
  if (finishReason === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } }
  if (finishReason === 'content_filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } }
  return { status: 'completed', incomplete_details: null }
}

export const outputText = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] })

export function messageItem (id: string, text: string, status = 'completed'): Item {
  return { type: 'message', id, role: 'assistant', status, content: [outputText(text)] }
}

/** A finished reasoning item: summary or reasoning_text content, and the sealed text when asked. */
export function reasoningItem (setup: ResponseSetup, id: string, text: string): Item {
  const item: Item = setup.summarize
    ? { type: 'reasoning', id, summary: [{ type: 'summary_text', text }] }
    : { type: 'reasoning', id, summary: [], content: [{ type: 'reasoning_text', text }] }
  if (setup.encryptReasoning) item.encrypted_content = setup.sealer.seal(text)
  return item
}

/** A tool call the model made, named as the client knows the tool: function call, or custom tool call. */
export function callItem (setup: ResponseSetup, index: number, chatName: string, callId: string, args: string, status = 'completed'): Item {
  const origin = setup.names.origin(chatName)
  const namespace = origin.namespace ? { namespace: origin.namespace } : {}
  if (origin.custom) {
    return { type: 'custom_tool_call', id: outputItemId('custom_tool_call', setup.core, index), call_id: callId, name: origin.name, ...namespace, input: customInput(args) }
  }
  return { type: 'function_call', id: outputItemId('function_call', setup.core, index), call_id: callId, name: origin.name, ...namespace, arguments: args, status }
}

/** A custom tool's input: the string the model put in `{"input": ...}`, or its raw arguments when it wrote something else. */
export function customInput (args: string): string {
  try {
    const parsed = JSON.parse(args)
    if (typeof parsed?.input === 'string') return parsed.input
  } catch {}
  return args
}

/** A whole chat answer as a Response: reasoning, then text, then each tool call. */
export function responseFromCompletion (setup: ResponseSetup, completion: ChatCompletion): ResponseObject {
  const choice = completion.choices?.[0]
  const message = choice?.message ?? {}
  const output: Item[] = []
  const reasoning = typeof message.reasoning_content === 'string' ? message.reasoning_content : ''
  if (reasoning !== '') output.push(reasoningItem(setup, outputItemId('reasoning', setup.core, output.length), reasoning))
  const text = typeof message.content === 'string' ? message.content : ''
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : []
  const state = finishState(choice?.finish_reason)
  // Whitespace alone is no message (Qwen writes "\n\n" before tool calls), unless it is the whole answer.
  if (text.trim() !== '' || (text !== '' && calls.length === 0)) output.push(messageItem(outputItemId('message', setup.core, output.length), text, state.status === 'completed' ? 'completed' : 'incomplete'))
  for (const call of calls) {
    const id = typeof call?.id === 'string' && call.id !== '' ? call.id : newToolCallId()
    output.push(callItem(setup, output.length, String(call?.function?.name ?? ''), id, String(call?.function?.arguments ?? '')))
  }
  return { ...baseResponse(setup), ...state, output, usage: responseUsage(completion.usage) }
}

import { asReminder, assistantMessage, systemMessage, userMessages, type ChatMessage, type Content } from './content.ts'

// An Anthropic Messages request → the chat request the pipeline sends (wire-apis §2.2). Pure and deterministic:
// the same request always becomes the same bytes, so upstream prefix caches keep hitting across turns.

export interface MessagesRequest {
  model: string
  max_tokens?: number
  system?: Content
  messages: Array<{ role: string, content: Content }>
  stream?: boolean | null
  stop_sequences?: string[]
  temperature?: number
  top_p?: number
  top_k?: number
  tools?: Array<Record<string, unknown>>
  tool_choice?: { type: string, name?: string, disable_parallel_tool_use?: boolean }
  thinking?: { type: string, budget_tokens?: number, display?: string }
  output_config?: { effort?: string, format?: Record<string, unknown> }
  output_format?: Record<string, unknown>
  metadata?: { user_id?: unknown }
  [key: string]: unknown
}

interface ChatTool {
  type: 'function'
  function: { name: string, description?: string, parameters: unknown }
}

// Anthropic's effort levels in chat's reasoning_effort terms (src/adapters/chat-request.ts maps those to DashScope).
const EFFORT: Record<string, string> = { low: 'low', medium: 'medium', high: 'high', xhigh: 'high', max: 'high' }

/**
 * The conversation: the system prompt first, then each turn. System messages inside `messages` stay where they are,
 * as system messages when first and as <system-reminder> user turns after that (see asReminder).
 */
export function chatMessages (body: Pick<MessagesRequest, 'system' | 'messages'>): ChatMessage[] {
  const out: ChatMessage[] = []
  if (body.system !== undefined && body.system !== null) {
    const system = systemMessage(body.system)
    if (system) out.push(system)
  }
  for (const message of body.messages) {
    if (message.role === 'user') out.push(...userMessages(message.content))
    else if (message.role === 'assistant') {
      const assistant = assistantMessage(message.content)
      if (assistant) out.push(assistant)
    } else if (message.role === 'system') {
      const system = systemMessage(message.content)
      if (system) out.push(out.length === 0 ? system : asReminder(system))
    }
  }
  return out
}

/**
 * Custom tools become chat functions. Tools with a dated `type` (`web_search_20250305`, `bash_20250124`) are
 * Anthropic's server or built-in tools, which a chat upstream cannot run: left out. `defer_loading`,
 * `eager_input_streaming`, `strict` and `cache_control` mean nothing to the upstream.
 */
export function chatTools (tools: MessagesRequest['tools']): ChatTool[] {
  const out: ChatTool[] = []
  for (const tool of tools ?? []) {
    if ((tool.type !== undefined && tool.type !== 'custom') || typeof tool.name !== 'string' || tool.name === '') continue
    const fn: ChatTool['function'] = { name: tool.name, parameters: tool.input_schema ?? { type: 'object', properties: {} } }
    if (typeof tool.description === 'string') fn.description = tool.description
    out.push({ type: 'function', function: { name: fn.name, description: fn.description, parameters: fn.parameters } })
  }
  return out
}

/** tool_choice in chat's terms; `disable_parallel_tool_use` → parallel_tool_calls false, else true (DashScope's default is false). */
export function chatToolChoice (choice: MessagesRequest['tool_choice']): { tool_choice?: unknown, parallel_tool_calls: boolean } {
  const parallel = choice?.disable_parallel_tool_use !== true
  switch (choice?.type) {
    case 'any': return { tool_choice: 'required', parallel_tool_calls: parallel }
    case 'none': return { tool_choice: 'none', parallel_tool_calls: parallel }
    case 'tool': return { tool_choice: { type: 'function', function: { name: choice.name ?? '' } }, parallel_tool_calls: parallel }
    case 'auto': return { tool_choice: 'auto', parallel_tool_calls: parallel }
    default: return { parallel_tool_calls: parallel }
  }
}

/**
 * The thinking switch: `enabled` with its budget, `adaptive` as a reasoning effort (output_config.effort, medium by
 * default), anything else off. translatedPayloads drops these for models without thinking (Qwen-Coder).
 */
export function thinkingFields (body: Pick<MessagesRequest, 'thinking' | 'output_config'>): Record<string, unknown> {
  const thinking = body.thinking
  if (thinking?.type === 'enabled') {
    const budget = thinking.budget_tokens
    return typeof budget === 'number' && budget > 0 ? { enable_thinking: true, thinking_budget: budget } : { enable_thinking: true }
  }
  if (thinking?.type === 'adaptive') return { reasoning_effort: EFFORT[body.output_config?.effort ?? 'medium'] ?? 'medium' }
  return { enable_thinking: false }
}

/** `display: "omitted"`: the client does not want thinking blocks back. */
export const showsThinking = (body: Pick<MessagesRequest, 'thinking'>) => body.thinking?.display !== 'omitted'

/** output_config.format (or the older output_format) as chat's response_format. */
export function responseFormat (body: Pick<MessagesRequest, 'output_config' | 'output_format'>): unknown {
  const format = body.output_config?.format ?? body.output_format
  if (!format || format.type !== 'json_schema') return undefined
  return { type: 'json_schema', json_schema: { name: 'output', schema: format.schema ?? {}, strict: true } }
}

/** The chat request for an Anthropic Messages request (count_tokens passes one without max_tokens). */
export function toChatRequest (body: MessagesRequest): Record<string, unknown> {
  const chat: Record<string, unknown> = { model: body.model, messages: chatMessages(body) }
  if (typeof body.max_tokens === 'number') chat.max_tokens = body.max_tokens
  if (body.stream === true) chat.stream = true
  for (const key of ['temperature', 'top_p', 'top_k'] as const) if (typeof body[key] === 'number') chat[key] = body[key]
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) chat.stop = body.stop_sequences
  const tools = chatTools(body.tools)
  if (tools.length > 0) {
    chat.tools = tools
    Object.assign(chat, chatToolChoice(body.tool_choice))
  }
  const format = responseFormat(body)
  if (format) chat.response_format = format
  Object.assign(chat, thinkingFields(body))
  return chat
}

/**
 * The conversation id for key affinity: Claude Code's `x-claude-code-session-id` header, else the `session_id` in
 * `metadata.user_id` (a JSON string in Claude Code 2.x; `user_…_session_<uuid>` before).
 */
export function claudeSession (header: unknown, metadata: MessagesRequest['metadata']): string | undefined {
  if (typeof header === 'string' && header !== '') return header
  const userId = metadata?.user_id
  if (typeof userId !== 'string' || userId === '') return undefined
  try {
    const parsed = JSON.parse(userId)
    if (typeof parsed?.session_id === 'string' && parsed.session_id !== '') return parsed.session_id
  } catch {
    // not JSON: the older format
  }
  return /session_([0-9a-f-]{8,})/i.exec(userId)?.[1]
}

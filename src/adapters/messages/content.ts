import { invalidRequest } from '../../errors.ts'
import { toUpstreamToolId } from './ids.ts'
import { isRecord } from '../records.ts'

// Anthropic content blocks → chat messages (wire-apis §2.3). Blocks the upstream cannot use (redacted thinking,
// server tool results, block types added later) are left out rather than refused: a conversation Claude Code built
// must not fail for a block the model never needed to see.

export interface Block {
  type: string
  [key: string]: unknown
}

export type Content = string | Block[]

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool'
  content: string | ChatPart[]
  tool_calls?: ChatToolCall[]
  tool_call_id?: string
  reasoning_content?: string
}

export type ChatPart = { type: 'text', text: string, cache_control?: unknown } | { type: 'image_url', image_url: { url: string } }

interface ChatToolCall {
  id: string
  type: 'function'
  function: { name: string, arguments: string }
}

const str = (value: unknown) => (typeof value === 'string' ? value : '')

/** Text parts with a cache marker keep it (DashScope's explicit cache reads it); other text is joined into a string. */
export function partsToContent (parts: ChatPart[], separator = '\n\n'): string | ChatPart[] {
  const plain = parts.every(part => part.type === 'text' && part.cache_control === undefined)
  if (!plain) return parts
  return parts.map(part => (part as { text: string }).text).join(separator)
}

function textPart (text: string, block: Block): ChatPart | null {
  if (text === '') return null
  return block.cache_control === undefined ? { type: 'text', text } : { type: 'text', text, cache_control: block.cache_control }
}

function imagePart (block: Block): ChatPart {
  const source = isRecord(block.source) ? block.source : {}
  if (source.type === 'base64') return { type: 'image_url', image_url: { url: `data:${str(source.media_type)};base64,${str(source.data)}` } }
  if (source.type === 'url') return { type: 'image_url', image_url: { url: str(source.url) } }
  throw invalidRequest(`Image sources of type '${String(source.type)}' are not supported by this gateway; send base64 or url images.`, 'messages.content.source')
}

/** A document or search result as text; PDFs and file ids cannot be read by a chat upstream. */
function documentText (block: Block): string {
  const title = str(block.title)
  let body: string
  if (block.type === 'search_result') {
    body = blockText(block.content)
  } else {
    const source = isRecord(block.source) ? block.source : {}
    if (source.type === 'text') body = str(source.data)
    else if (source.type === 'content') body = blockText(source.content)
    else if (source.type === 'base64' && source.media_type === 'text/plain') body = Buffer.from(str(source.data), 'base64').toString('utf8')
    else throw invalidRequest(`Document sources of type '${String(source.type)}' (${String(source.media_type ?? 'no media type')}) are not supported by this gateway; send the document as text.`, 'messages.content.source')
  }
  return title === '' ? body : `${title}\n\n${body}`
}

/** The text of a string or of an array of blocks (text blocks only). */
export function blockText (content: unknown, separator = '\n'): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  return content.filter(block => isRecord(block) && block.type === 'text' && typeof block.text === 'string' && block.text !== '')
    .map(block => block.text).join(separator)
}

/** The parts of a user or system turn (text, images, documents); null for blocks handled elsewhere or left out. */
function userPart (block: Block): ChatPart | null {
  switch (block.type) {
    case 'text': return textPart(str(block.text), block)
    case 'image': return imagePart(block)
    case 'document':
    case 'search_result': return textPart(documentText(block), block)
    default: return null
  }
}

/** One tool message per result: its text joined, an error marked as such; images go to the user turn after it. */
function toolResult (block: Block, images: ChatPart[]): ChatMessage {
  const id = toUpstreamToolId(str(block.tool_use_id))
  const parts: ChatPart[] = []
  const content = block.content
  if (typeof content === 'string') {
    if (content !== '') parts.push({ type: 'text', text: content })
  } else if (Array.isArray(content)) {
    for (const inner of content) {
      if (!isRecord(inner)) continue
      if (inner.type === 'image') images.push(imagePart(inner as Block))
      else {
        const part = userPart(inner as Block)
        if (part) parts.push(part)
      }
    }
  }
  if (block.is_error === true) {
    const first = parts[0]
    if (first?.type !== 'text') parts.unshift({ type: 'text', text: 'Error:' })
    else if (!/^\s*(<tool_use_error>|error)/i.test(first.text)) parts[0] = { ...first, text: `Error: ${first.text}` }
  }
  if (block.cache_control !== undefined && parts.length > 0) {
    const last = parts[parts.length - 1]
    if (last.type === 'text') parts[parts.length - 1] = { ...last, cache_control: block.cache_control }
  }
  return { role: 'tool', tool_call_id: id, content: partsToContent(parts, '\n') }
}

/** A user turn: its tool results first (one tool message each), then the rest of the turn as one user message. */
export function userMessages (content: Content): ChatMessage[] {
  if (typeof content === 'string') return [{ role: 'user', content }]
  const tools: ChatMessage[] = []
  const images: ChatPart[] = []
  const parts: ChatPart[] = []
  for (const block of content) {
    if (!isRecord(block)) continue
    if (block.type === 'tool_result') tools.push(toolResult(block, images))
    else {
      const part = userPart(block)
      if (part) parts.push(part)
    }
  }
  const rest = [...images, ...parts]
  if (rest.length > 0 || tools.length === 0) tools.push({ role: 'user', content: partsToContent(rest) })
  return tools
}

/** An assistant turn: text, tool calls with the ids the upstream gave them, and its thinking as reasoning_content. */
export function assistantMessage (content: Content): ChatMessage | null {
  if (typeof content === 'string') return { role: 'assistant', content }
  const parts: ChatPart[] = []
  const calls: ChatToolCall[] = []
  const thinking: string[] = []
  for (const block of content) {
    if (!isRecord(block)) continue
    if (block.type === 'text') {
      const part = textPart(str(block.text), block)
      if (part) parts.push(part)
    } else if (block.type === 'tool_use') {
      calls.push({ id: toUpstreamToolId(str(block.id)), type: 'function', function: { name: str(block.name), arguments: JSON.stringify(block.input ?? {}) } })
    } else if (block.type === 'thinking' && str(block.thinking) !== '') {
      thinking.push(str(block.thinking))
    }
  }
  if (parts.length === 0 && calls.length === 0) return null
  const message: ChatMessage = { role: 'assistant', content: partsToContent(parts) }
  if (calls.length > 0) message.tool_calls = calls
  if (thinking.length > 0) message.reasoning_content = thinking.join('\n\n')
  return message
}

/** A system prompt (top-level or a mid-conversation system message), string or text blocks. */
export function systemMessage (content: Content): ChatMessage | null {
  if (typeof content === 'string') return content === '' ? null : { role: 'system', content }
  const parts = content.filter(isRecord).map(userPart).filter(part => part !== null)
  return parts.length === 0 ? null : { role: 'system', content: partsToContent(parts) }
}

const REMINDER = /^\s*<system-reminder>[\s\S]*<\/system-reminder>\s*$/

/**
 * A system message after the first, as a user turn wrapped in <system-reminder> (unless it already is): Qwen's chat
 * templates refuse a system message anywhere but first ("System message must be at the beginning", from vLLM; and
 * DashScope's own Anthropic endpoint refuses them, QwenLM/Qwen#2244), yet Claude Code (2.1.154 on) sends one on every
 * request. Anthropic only allows one before an assistant turn or last, so a user turn there breaks no tool sequence.
 */
export function asReminder (system: ChatMessage): ChatMessage {
  const content = system.content
  if (typeof content === 'string') return { role: 'user', content: REMINDER.test(content) ? content : `<system-reminder>\n${content}\n</system-reminder>` }
  return { role: 'user', content: [{ type: 'text', text: '<system-reminder>' }, ...content, { type: 'text', text: '</system-reminder>' }] }
}

import { invalidRequest, unsupportedParameter } from '../../errors.ts'
import { newToolCallId } from '../tool-calls.ts'
import type { ReasoningSealer } from './reasoning-token.ts'
import type { ToolNames } from './tools.ts'
import type { Item } from './types.ts'

// Input items as chat messages (wire-apis §1.3). `id` and `status` on input items are ignored. Consecutive
// function calls (and the assistant text before them) become one assistant message with several tool_calls;
// reasoning items become the `reasoning_content` of the next assistant message.

type Message = Record<string, any>
type Part = Record<string, any>

export interface InputContext {
  names: ToolNames
  sealer: ReasoningSealer
}

/** Items whose work happened on OpenAI's side (hosted tools) or that carry nothing a chat model can read. */
const DROPPED = /^(web_search_call|file_search_call|computer_call|computer_call_output|code_interpreter_call|image_generation_call|local_shell_call|local_shell_call_output|shell_call|shell_call_output|apply_patch_call|apply_patch_call_output|mcp_.*|compaction|tool_search_call|tool_search_output)$/

const textOf = (parts: Part[]) => parts.filter(part => typeof part.text === 'string').map(part => part.text as string).join('')

function imagePart (part: Part, param: string): Part {
  const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url
  if (typeof url !== 'string') throw unsupportedParameter(param, 'images are accepted as image_url (a URL or a data: URI); file_id cannot be resolved by this gateway')
  const image: Part = { url }
  if (typeof part.detail === 'string' && part.detail !== 'auto') image.detail = part.detail
  return { type: 'image_url', image_url: image }
}

/** A user message's content parts in chat terms: text and images; files are refused rather than dropped. */
function userParts (content: unknown, param: string): Part[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  if (!Array.isArray(content)) return []
  return content.map((part: Part, i) => {
    switch (part?.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        return { type: 'text', text: String(part.text ?? '') }
      case 'input_image':
        return imagePart(part, `${param}[${i}]`)
      case 'refusal':
        return { type: 'text', text: String(part.refusal ?? '') }
      default:
        throw unsupportedParameter(`${param}[${i}]`, `content parts of type "${String(part?.type)}" (such as input_file) cannot be passed to the upstream model`)
    }
  })
}

/** One text string when the parts are all text (what every upstream accepts), else the parts. */
const chatContent = (parts: Part[]): string | Part[] =>
  parts.every(part => part.type === 'text') ? parts.map(part => part.text).join('') : parts

/** The reasoning a reasoning item carries: our own token first (the whole text), else its summary or content. */
export function reasoningText (item: Item, sealer: ReasoningSealer): string {
  const sealed = sealer.open(item.encrypted_content)
  if (sealed !== null) return sealed
  const summary = Array.isArray(item.summary) ? textOf(item.summary) : ''
  if (summary !== '') return summary
  return Array.isArray(item.content) ? textOf(item.content) : ''
}

/** function_call_output / custom_tool_call_output: the text for the tool message, images for a user message after it. */
function toolOutput (output: unknown): { text: string, images: Part[] } {
  if (typeof output === 'string') return { text: output, images: [] }
  if (!Array.isArray(output)) return { text: output == null ? '' : JSON.stringify(output), images: [] }
  const images = output.filter((part: Part) => part?.type === 'input_image').map((part: Part) => imagePart(part, 'output'))
  return { text: textOf(output.filter((part: Part) => part?.type !== 'input_image')), images }
}

/** Translates the conversation's items, in order, into chat messages. */
export function inputMessages (items: Item[], context: InputContext): Message[] {
  const messages: Message[] = []
  let reasoning = ''
  const last = () => messages.at(-1)
  const takeReasoning = (message: Message) => {
    if (reasoning !== '') message.reasoning_content = reasoning
    reasoning = ''
    return message
  }

  items.forEach((item, i) => {
    const param = `input[${i}]`
    const type = item.type ?? (typeof item.role === 'string' ? 'message' : undefined)
    switch (type) {
      case 'message': {
        const role = item.role
        if (role === 'system' || role === 'developer') {
          messages.push({ role: 'system', content: chatContent(userParts(item.content, `${param}.content`)) })
        } else if (role === 'assistant') {
          const text = typeof item.content === 'string' ? item.content : Array.isArray(item.content) ? textOf(item.content.map((part: Part) => part?.type === 'refusal' ? { text: part.refusal } : part)) : ''
          messages.push(takeReasoning({ role: 'assistant', content: text }))
        } else if (role === 'user') {
          messages.push({ role: 'user', content: chatContent(userParts(item.content, `${param}.content`)) })
        } else {
          throw invalidRequest(`${param}.role must be one of user, assistant, system or developer.`, `${param}.role`)
        }
        return
      }
      case 'function_call':
      case 'custom_tool_call': {
        const name = context.names.chatName(String(item.name ?? ''), typeof item.namespace === 'string' ? item.namespace : undefined)
        const args = type === 'custom_tool_call' ? JSON.stringify({ input: String(item.input ?? '') }) : String(item.arguments ?? '')
        const call = { id: typeof item.call_id === 'string' && item.call_id !== '' ? item.call_id : newToolCallId(), type: 'function', function: { name, arguments: args } }
        const previous = last()
        // Parallel calls, and the text the assistant wrote before them, are one chat turn.
        if (previous?.role === 'assistant' && reasoning === '') {
          previous.tool_calls = [...(previous.tool_calls ?? []), call]
        } else {
          messages.push(takeReasoning({ role: 'assistant', content: null, tool_calls: [call] }))
        }
        return
      }
      case 'function_call_output':
      case 'custom_tool_call_output': {
        const { text, images } = toolOutput(item.output)
        messages.push({ role: 'tool', tool_call_id: String(item.call_id ?? ''), content: text })
        if (images.length > 0) messages.push({ role: 'user', content: images })
        return
      }
      case 'reasoning': {
        const text = reasoningText(item, context.sealer)
        if (text !== '') reasoning = reasoning === '' ? text : `${reasoning}\n\n${text}`
        return
      }
      case 'item_reference':
        throw invalidRequest(`${param}: item_reference ${String(item.id)} was not resolved.`, param)
      default:
        if (typeof type === 'string' && (DROPPED.test(type) || /_call(_output)?$/.test(type))) return
        throw invalidRequest(`${param}.type "${String(type)}" is not a supported input item type.`, `${param}.type`)
    }
  })
  return messages
}

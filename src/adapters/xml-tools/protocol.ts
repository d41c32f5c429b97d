// The XML tool protocol for upstreams without native tool calling. Qwen models are trained on Hermes-style calls,
// so the gateway speaks that shape: the tools go into the system prompt as JSON inside <tools></tools>, the model
// answers with <tool_call>{"name": ..., "arguments": {...}}</tool_call> blocks, and results go back in a user turn
// as <tool_response> blocks. request.ts turns an OpenAI tool request into that; parser.ts turns the streamed text
// back into OpenAI tool calls. Nothing here touches text outside a <tool_call> block.

export interface OpenAITool {
  type: string
  function?: { name: string, description?: string, parameters?: object, strict?: boolean | null, [key: string]: unknown }
  [key: string]: unknown
}

export interface OpenAIToolCall {
  id: string
  type: 'function'
  function: { name: string, arguments: string }
}

export interface ParsedText {
  content: string
  calls: OpenAIToolCall[]
}

export const OPEN = '<tool_call>'
export const CLOSE = '</tool_call>'
export const TOOL_FIELDS = new Set(['tools', 'tool_choice', 'parallel_tool_calls'])

export const isSpace = (c: string | undefined) => c === ' ' || c === '\n' || c === '\r' || c === '\t'
export const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff
export { isRecord } from '../records.ts'

export function isJson (text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

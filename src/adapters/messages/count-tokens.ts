import type { ChatMessage } from './content.ts'

// /v1/messages/count_tokens (wire-apis §2.8) without an upstream tokenizer: an estimate over the translated chat
// request, at one token per four bytes of text (close for English and Chinese alike, as src/adapters/request-cost.ts
// reasons), a few tokens of framing per message, and a flat cost per image: base64 bytes say nothing about tokens.

const PER_MESSAGE = 4
const PER_IMAGE = 1600

const bytes = (text: unknown) => (typeof text === 'string' ? Buffer.byteLength(text) : 0)

export function estimateInputTokens (chat: { messages?: unknown, tools?: unknown }): number {
  const messages = Array.isArray(chat.messages) ? chat.messages as ChatMessage[] : []
  let textBytes = 0
  let tokens = 0
  for (const message of messages) {
    tokens += PER_MESSAGE
    if (typeof message.content === 'string') textBytes += bytes(message.content)
    else if (Array.isArray(message.content)) {
      for (const part of message.content) {
        if (part.type === 'text') textBytes += bytes(part.text)
        else tokens += PER_IMAGE
      }
    }
    for (const call of message.tool_calls ?? []) textBytes += bytes(call.function.name) + bytes(call.function.arguments)
    textBytes += bytes(message.reasoning_content)
  }
  if (Array.isArray(chat.tools) && chat.tools.length > 0) textBytes += Buffer.byteLength(JSON.stringify(chat.tools))
  return tokens + Math.ceil(textBytes / 4)
}

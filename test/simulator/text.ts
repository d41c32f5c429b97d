// Each piece is a word plus the whitespace after it, so the pieces join back to the text exactly.
const WORDS = /\S+\s*|\s+/gu

/** Split text into delta pieces; by code points when chunkSize is set, so no surrogate pair is cut. */
export function splitText (text: string, chunkSize?: number): string[] {
  if (chunkSize === undefined || !(chunkSize >= 1)) return text.match(WORDS) ?? []
  const size = Math.floor(chunkSize)
  const points = Array.from(text)
  const pieces: string[] = []
  for (let i = 0; i < points.length; i += size) pieces.push(points.slice(i, i + size).join(''))
  return pieces
}

/** String content, or the concatenated text of content parts. */
export function contentText (content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  return content.map((part) => typeof part?.text === 'string' ? part.text : '').join('')
}

export function lastUserText (messages: any[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') return contentText(messages[i].content)
  }
  return ''
}

/** Deterministic stand-in for a tokenizer: whitespace-separated words in all messages, at least 1. */
export function countPromptTokens (messages: any[]): number {
  let words = 0
  for (const message of messages) {
    words += contentText(message?.content).split(/\s+/u).filter(Boolean).length
  }
  return Math.max(1, words)
}

import { newToolCallId } from '../tool-calls.ts'
import { CLOSE, isHighSurrogate, isJson, isRecord, isSpace, OPEN, type OpenAIToolCall, type ParsedText } from './protocol.ts'

/** A block's text as an OpenAI tool call, or null when it is not one (invalid JSON, no name). */
function toToolCall (body: string): OpenAIToolCall | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return null
  }
  if (!isRecord(parsed) || typeof parsed.name !== 'string' || parsed.name === '') return null
  const args = 'arguments' in parsed ? parsed.arguments : parsed.parameters
  let text: string
  if (args === undefined || args === null) text = '{}'
  else if (isRecord(args)) text = JSON.stringify(args)
  else if (typeof args === 'string') text = isJson(args) ? args : JSON.stringify(args)
  else return null
  return { id: newToolCallId(), type: 'function', function: { name: parsed.name, arguments: text } }
}

/** Length of the longest end of `text` that could be the start of OPEN (but is not all of it). */
function partialOpen (text: string): number {
  for (let n = Math.min(OPEN.length - 1, text.length); n > 0; n--) {
    if (OPEN.startsWith(text.slice(text.length - n))) return n
  }
  return 0
}

/**
 * Incremental parser for streamed assistant text. Text outside <tool_call> blocks goes out as soon as it cannot be
 * the start of a tag; only a possible tag start, whitespace right before it, and a trailing high surrogate wait.
 * Whitespace between a call block and its neighbours is dropped; everything else passes byte for byte. Inside a
 * block, the JSON is lexed as it arrives, so a `</tool_call>` inside a JSON string (an argument) does not end it.
 */
export class XmlToolCallParser {
  /** Text mode: text held back. */
  #held = ''
  #inCall = false
  /** Whitespace dropped before the current block's open tag: given back if the block is not a call. */
  #lead = ''
  /** Only whitespace since the last call: it is dropped. */
  #afterCall = false
  /** Call mode: the block's text so far, and the JSON lexer's state. */
  #body: string[] = []
  #opened = false
  #inString = false
  #escaped = false
  #closeMatched = 0
  #count = 0

  /** How many calls were emitted so far. */
  get callCount (): number {
    return this.#count
  }

  /** Feeds the next text delta; returns text that is safe to show now (never part of a tag) and tool calls completed by this delta. */
  push (text: string): ParsedText {
    const out: ParsedText = { content: '', calls: [] }
    let rest = text
    while (rest !== '') rest = this.#inCall ? this.#callStep(rest, out) : this.#textStep(rest, out)
    return out
  }

  /** End of the answer: flushes held-back text (an unfinished <tool_call> becomes plain content again). */
  flush (): ParsedText {
    const content = this.#inCall ? this.#lead + OPEN + this.#body.join('') : this.#held
    this.#held = ''
    this.#lead = ''
    this.#body = []
    this.#inCall = false
    this.#afterCall = false
    return { content, calls: [] }
  }

  #textStep (input: string, out: ParsedText): string {
    let text = this.#held + input
    this.#held = ''
    if (this.#afterCall) {
      let start = 0
      while (isSpace(text[start])) start++
      text = text.slice(start)
      if (text === '') return ''
      this.#afterCall = false
    }
    const at = text.indexOf(OPEN)
    if (at >= 0) {
      let end = at
      while (end > 0 && isSpace(text[end - 1])) end--
      out.content += text.slice(0, end)
      this.#lead = text.slice(end, at)
      this.#startCall()
      return text.slice(at + OPEN.length)
    }
    let cut = text.length - partialOpen(text)
    while (cut > 0 && isSpace(text[cut - 1])) cut--
    if (cut > 0 && cut === text.length && isHighSurrogate(text.charCodeAt(cut - 1))) cut--
    out.content += text.slice(0, cut)
    this.#held = text.slice(cut)
    return ''
  }

  #startCall (): void {
    this.#inCall = true
    this.#body = []
    this.#opened = false
    this.#inString = false
    this.#escaped = false
    this.#closeMatched = 0
  }

  #callStep (input: string, out: ParsedText): string {
    for (let i = 0; i < input.length; i++) {
      const c = input[i]
      if (!this.#opened) {
        if (isSpace(c)) continue
        if (c !== '{') {
          // Not a JSON call (the model wrote the tag in prose): the tag is plain text, and so is what follows.
          out.content += this.#lead + OPEN
          this.#lead = ''
          this.#inCall = false
          return this.#body.join('') + input
        }
        this.#opened = true
        continue
      }
      if (this.#closeMatched > 0) {
        if (c === CLOSE[this.#closeMatched]) {
          if (++this.#closeMatched === CLOSE.length) {
            const block = this.#body.join('') + input.slice(0, i + 1)
            this.#endCall(block.slice(0, block.length - CLOSE.length), out)
            return input.slice(i + 1)
          }
          continue
        }
        this.#closeMatched = 0
      }
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false
        else if (c === '\\') this.#escaped = true
        else if (c === '"') this.#inString = false
      } else if (c === '"') {
        this.#inString = true
      } else if (c === '<') {
        this.#closeMatched = 1
      }
    }
    this.#body.push(input)
    return ''
  }

  #endCall (body: string, out: ParsedText): void {
    this.#inCall = false
    this.#body = []
    const call = toToolCall(body)
    if (call) {
      out.calls.push(call)
      this.#count++
      this.#afterCall = true
    } else {
      out.content += this.#lead + OPEN + body + CLOSE
      this.#afterCall = false
    }
    this.#lead = ''
  }
}

/** The same for a complete (non-streamed) answer: content without the call blocks (null when nothing else remains) and the calls. */
export function parseXmlToolCalls (text: string): { content: string | null, calls: OpenAIToolCall[] } {
  const parser = new XmlToolCallParser()
  const pushed = parser.push(text)
  const flushed = parser.flush()
  const content = pushed.content + flushed.content
  return { content: content === '' && pushed.calls.length > 0 ? null : content, calls: pushed.calls }
}

import type { GatewayError } from '../errors.ts'
import type { EventWriter } from './event-writer.ts'
import type { FrameHandler } from '../sse/relay.ts'
import { DONE_EVENT, dataEvent, parseEvent } from '../sse/event.ts'
import { checkChunkShape, StreamTransforms, type AnswerOptions, type Chunk } from './chunk-transforms.ts'
import { errorFromUpstream, readErrorFields, statusForStreamError, type UpstreamContext } from './upstream-errors.ts'
import { fromMidStreamError } from './upstream-failures.ts'
import type { Usage } from './usage.ts'

export interface StreamObserver {
  firstToken (): void
  usage (usage: Usage): void
  error (error: GatewayError): void
}

export interface ChatStreamOptions extends Partial<AnswerOptions> {
  /** The client asked for the usage chunk (`stream_options.include_usage`). */
  includeUsage: boolean
  /**
   * Writes the answer in another API's events (legacy completions, Responses, Anthropic Messages): every frame is
   * then parsed, once, and each normalised chunk handed to the writer. Without one, chat chunks pass through.
   */
  writer?: EventWriter | null
}

// What to look for in a frame without parsing it. The frame is read as latin1 (one char per byte: cheap, and exact
// for these ASCII keys), then searched with one regular expression per question, which costs a third of what a
// native search per key does. Inside a JSON string a quote is always escaped, so these match real keys only,
// never text the model wrote. JSON allows whitespace around the colon, and Python upstreams write `"usage": {`
// (json.dumps' default separators): a compact-only pattern left such streams uncharged.
const NEEDS_PARSING = /"(?:usage"[ \t\r\n]*:[ \t\r\n]*\{|tool_calls"[ \t\r\n]*:[ \t\r\n]*\[|reasoning"[ \t\r\n]*:[ \t\r\n]*")/
const FINISH_REASON = /"finish_reason"[ \t\r\n]*:[ \t\r\n]*"/
const TOKEN = /"(?:content|reasoning_content|reasoning|arguments|name)"[ \t\r\n]*:[ \t\r\n]*"[^"]/

/**
 * The chat stream handler: forwards upstream chunks byte for byte and parses only the frames that need a change:
 * the usage chunk (recorded; dropped when the client did not ask for it), tool-call deltas (normalised),
 * `reasoning` (renamed), error events (rewritten into OpenAI's `data: {"error":...}`), oddly framed events; and
 * every frame when the answer itself is transformed (think tags, XML tool calls). It also notices the first token.
 */
export class ChatStreamHandler implements FrameHandler {
  done = false
  readonly #includeUsage: boolean
  readonly #observer: StreamObserver
  readonly #context: UpstreamContext
  readonly #answer: AnswerOptions
  /** Made at the first frame that needs a change: most streams never need one. */
  #transforms: StreamTransforms | null = null
  readonly #parseAll: boolean
  readonly #writer: EventWriter | null
  #tokenSeen = false
  #finishSeen = false

  constructor (options: ChatStreamOptions, observer: StreamObserver, context: UpstreamContext) {
    this.#includeUsage = options.includeUsage
    this.#observer = observer
    this.#context = context
    this.#answer = { thinkTags: options.thinkTags ?? false, xmlTools: options.xmlTools ?? null }
    this.#writer = options.writer ?? null
    this.#parseAll = this.#answer.thinkTags || this.#answer.xmlTools !== null || this.#writer !== null
  }

  frame (frame: Buffer): Buffer | string | null | undefined {
    const text = frame.toString('latin1')
    if (!this.#tokenSeen && TOKEN.test(text)) {
      this.#tokenSeen = true
      this.#observer.firstToken()
    }
    if (text.startsWith('data: {') && text.includes('"choices"')) {
      // Once a finish_reason was seen it matters again only when a transform watches for it.
      const watchFinish = this.#transforms?.watchesFinish ?? false
      const finish = (!this.#finishSeen || watchFinish) && FINISH_REASON.test(text)
      if (finish) this.#finishSeen = true
      if (!(this.#parseAll || NEEDS_PARSING.test(text) || (finish && watchFinish))) return undefined
      // A frame whose data spans several lines is read field by field; one line (LF or CRLF ending) is JSON as it is.
      if (text.indexOf('\n') < text.length - 3) return this.#unusual(frame)
      return this.#rewrite(JSON.parse(frame.toString('utf8', 6)))
    }
    return this.#unusual(frame)
  }

  end (): string | null {
    if (this.#finishSeen) return this.#finish()
    // Ended cleanly but without a finish_reason: the answer was cut short, which the client must not mistake for a full one.
    return this.#fail(errorFromUpstream(502, { message: `The upstream ${this.#context.host} ended the stream before the answer was complete.`, type: 'server_error', code: 'upstream_stream_incomplete', param: null }, this.#context))
  }

  fail (error: Error): string {
    return this.#fail(fromMidStreamError(error, this.#context.host))
  }

  #fail (error: GatewayError): string {
    this.done = true
    this.#observer.error(error)
    return this.#writer ? this.#writer.fail(error) : dataEvent(error.toJSON())
  }

  #finish (): string | null {
    this.done = true
    return this.#writer ? this.#writer.end() : DONE_EVENT
  }

  /**
   * Applies the transforms to one parsed chunk and writes the result (possibly several chunks, possibly none). A chunk
   * that is not JSON (JSON.parse threw before), or not shaped as the transforms need, throws: the relay then ends the
   * stream with an upstream_protocol error event (see SseRelay).
   */
  #rewrite (chunk: unknown): string | null {
    checkChunkShape(chunk)
    if (chunk.usage) this.#observer.usage(chunk.usage)
    let out = ''
    this.#transforms ??= new StreamTransforms(this.#answer)
    for (const part of this.#transforms.apply(chunk)) {
      if (this.#writer) out += this.#writer.chunk(part)
      else if (this.#includeUsage || !part.usage || (part.choices?.length ?? 0) > 0) out += dataEvent(part)
    }
    return out === '' ? null : out
  }

  // Everything that is not a plain `data: {"choices":...}` chunk: [DONE], comments, `event: error`,
  // bare {"code","message"} errors, `data:{` without a space, CRLF-framed events.
  #unusual (frame: Buffer): string | null | undefined {
    const { event, data } = parseEvent(frame)
    if (data === null) return event === null ? undefined : null
    if (data.trim() === '[DONE]') return this.#finish()
    let payload: unknown
    try {
      payload = JSON.parse(data)
    } catch (error) {
      // A broken chunk that carried usage or tool calls cannot be dropped unseen: the stream ends with an error.
      if (NEEDS_PARSING.test(data)) throw error
      return null // the official SDK throws on non-JSON data, so such an event never reaches a client
    }
    if (event !== 'error' && typeof payload === 'object' && payload !== null && Array.isArray((payload as Chunk).choices)) {
      if (FINISH_REASON.test(data)) this.#finishSeen = true
      return this.#rewrite(payload)
    }
    const fields = readErrorFields(payload)
    if (fields) return this.#fail(errorFromUpstream(statusForStreamError(fields.code), fields, this.#context))
    return null
  }
}

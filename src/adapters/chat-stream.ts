import type { GatewayError } from '../errors.ts'
import type { FrameHandler } from '../sse/relay.ts'
import { DONE_EVENT, dataEvent, parseEvent } from '../sse/event.ts'
import { errorFromUpstream, readErrorFields, statusForStreamError, type UpstreamContext } from './upstream-errors.ts'
import { fromMidStreamError } from './upstream-failures.ts'
import type { Usage } from './usage.ts'

export interface StreamObserver {
  firstToken (): void
  usage (usage: Usage): void
  error (error: GatewayError): void
}

// Byte patterns looked for without decoding the frame. Inside a JSON string a quote is always escaped,
// so these can only match real keys, never text the model wrote.
const DATA_JSON = Buffer.from('data: {')
const USAGE_OBJECT = Buffer.from('"usage":{')
const CHOICES = Buffer.from('"choices"')
const FINISH_REASON = Buffer.from('"finish_reason":"')
const TOKEN = /"(?:content|reasoning_content|reasoning|arguments|name)":"[^"]/

/**
 * The chat pass-through: forwards upstream chunks byte for byte and looks inside only the frames that need it:
 * the usage chunk (recorded; dropped when the client did not ask for it), error events (rewritten into
 * OpenAI's `data: {"error":...}`), and oddly framed events (normalised). It also notices the first token.
 */
export class ChatStreamHandler implements FrameHandler {
  done = false
  readonly #includeUsage: boolean
  readonly #observer: StreamObserver
  readonly #context: UpstreamContext
  #tokenSeen = false
  #finishSeen = false

  constructor (includeUsage: boolean, observer: StreamObserver, context: UpstreamContext) {
    this.#includeUsage = includeUsage
    this.#observer = observer
    this.#context = context
  }

  frame (frame: Buffer): Buffer | string | null | undefined {
    if (!this.#tokenSeen && TOKEN.test(frame.toString('latin1'))) {
      this.#tokenSeen = true
      this.#observer.firstToken()
    }
    if (frame.subarray(0, DATA_JSON.length).equals(DATA_JSON) && frame.includes(CHOICES)) {
      if (!this.#finishSeen && frame.includes(FINISH_REASON)) this.#finishSeen = true
      return frame.includes(USAGE_OBJECT) ? this.#usageChunk(frame.toString().slice(6), undefined) : undefined
    }
    return this.#unusual(frame)
  }

  end (): string {
    if (this.#finishSeen) return DONE_EVENT
    // Ended cleanly but without a finish_reason: the answer was cut short, which the client must not mistake for a full one.
    return this.#fail(errorFromUpstream(502, { message: `The upstream ${this.#context.host} ended the stream before the answer was complete.`, type: 'server_error', code: 'upstream_stream_incomplete', param: null }, this.#context))
  }

  fail (error: Error): string {
    return this.#fail(fromMidStreamError(error, this.#context.host))
  }

  #fail (error: GatewayError): string {
    this.done = true
    this.#observer.error(error)
    return dataEvent(error.toJSON())
  }

  /** Parses a chunk that carries usage; `normalised` is the frame to send when its own bytes are not fit to forward. */
  #usageChunk (json: string, normalised: string | undefined): string | null | undefined {
    const chunk = JSON.parse(json) as { choices?: unknown[], usage?: Usage | null }
    if (chunk.usage) this.#observer.usage(chunk.usage)
    if (this.#includeUsage || (chunk.choices?.length ?? 0) > 0) return normalised
    return null
  }

  // Everything that is not a plain `data: {"choices":...}` chunk: [DONE], comments, `event: error`,
  // bare {"code","message"} errors, `data:{` without a space, CRLF-framed events.
  #unusual (frame: Buffer): string | null | undefined {
    const { event, data } = parseEvent(frame)
    if (data === null) return event === null ? undefined : null
    if (data.trim() === '[DONE]') {
      this.done = true
      return DONE_EVENT
    }
    let payload: unknown
    try {
      payload = JSON.parse(data)
    } catch {
      return null // the official SDK throws on non-JSON data, so such an event never reaches a client
    }
    const chunk = payload as { choices?: unknown, usage?: unknown }
    if (event !== 'error' && Array.isArray(chunk.choices)) {
      if (!this.#finishSeen && data.includes('"finish_reason":"')) this.#finishSeen = true
      const normalised = `data: ${data}\n\n`
      return chunk.usage ? this.#usageChunk(data, normalised) : normalised
    }
    const fields = readErrorFields(payload)
    if (fields) return this.#fail(errorFromUpstream(statusForStreamError(fields.code), fields, this.#context))
    return null
  }
}

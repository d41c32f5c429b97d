import { Readable } from 'node:stream'
import { internalError } from '../errors.ts'
import { dataEvent } from './event.ts'

/**
 * Decides, frame by frame, what of an upstream event stream reaches the client.
 * A frame is one whole SSE event including its blank-line terminator.
 */
export interface FrameHandler {
  /** undefined passes the frame's bytes through untouched; null drops it; anything else replaces it. */
  frame (frame: Buffer): Buffer | string | null | undefined
  /** The upstream ended normally; what to append (for example the [DONE] it forgot). */
  end (): Buffer | string | null
  /**
   * The stream cannot go on: the upstream failed mid-stream, or the relay refused an event (FrameTooLargeError,
   * UnreadableFrameError). Returns the error event to send before closing.
   */
  fail (error: Error): Buffer | string
  /** Set by the handler once the stream is complete ([DONE] or an error event): the rest is discarded. */
  readonly done: boolean
}

const LF = 10
const CR = 13

/** Offset just past the first blank line at or after `from`, or -1. Handles \n\n and \r\n\r\n endings. */
export function frameEnd (buf: Buffer, from: number): number {
  let i = buf.indexOf(LF, from)
  while (i !== -1) {
    const next = buf[i + 1]
    if (next === LF) return i + 2
    if (next === CR && buf[i + 2] === LF) return i + 3
    i = buf.indexOf(LF, i + 1)
  }
  return -1
}

export interface HeartbeatOptions {
  intervalMs: number
  onBeat?: () => void
  /** What a beat sends: a comment by default; an API family may send its own ping event. */
  text?: () => string
}

export interface RelayOptions {
  /** Keep-alive comments while the upstream is silent; none without. */
  heartbeat?: HeartbeatOptions | null
  /** The largest event accepted from the upstream, its blank line included (MAX_FRAME_BYTES). */
  maxFrameBytes?: number
}

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024

/** An upstream event grew past the frame limit before it ended (or ended past it). */
export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError'
  readonly maxBytes: number
  constructor (maxBytes: number) {
    super(`an SSE event was larger than ${maxBytes} bytes`)
    this.maxBytes = maxBytes
  }
}

/** The frame handler threw on an event (it could not parse or transform it): the cause says why. */
export class UnreadableFrameError extends Error {
  override name = 'UnreadableFrameError'
  constructor (cause: unknown) {
    super('an SSE event could not be read', { cause })
  }
}

const HEARTBEAT = ': keep-alive\n\n'
const BLANK_LINE = Buffer.from('\n\n')
// When a handler cannot even describe its own failure: the stream still ends with an event in OpenAI's envelope.
const LAST_RESORT = dataEvent(internalError().toJSON())

/**
 * Relays an upstream SSE body to the client as bytes arrive. Complete frames the handler leaves alone are
 * forwarded as the very buffers undici produced, without decoding; only an event split across reads waits
 * for its remainder. Backpressure flows to the upstream socket, and destroying the relay (the client went
 * away) destroys the upstream body, which aborts the upstream request.
 *
 * A hostile or broken upstream costs at most its own stream: an event larger than `maxFrameBytes` ends
 * the stream with the handler's error event and closes the upstream instead of buffering on, and whatever the
 * handler throws on an event (a parse, a transform) ends the stream the same way instead of escaping from the
 * body's 'data' listener, where it would become an uncaught exception once backpressure has the body emit on a
 * tick of its own.
 *
 * The relay can be sent to the client before the upstream has answered (`attach` comes later): while nothing
 * flows it sends `: keep-alive` comments, which clients ignore and which keep proxies with idle timeouts
 * (nginx, load balancers) from cutting a stream whose model is still thinking.
 */
export class SseRelay extends Readable {
  #source: Readable | null = null
  #handler: FrameHandler | null = null
  // An event split across reads, kept as the reads that brought it and joined once, when its end arrives: never
  // copied again per read, so a long event costs linear time. Its last two bytes are kept apart, for a blank line
  // split between reads.
  readonly #pending: Buffer[] = []
  #pendingBytes = 0
  #last = -1
  #beforeLast = -1
  #finished = false
  readonly #heartbeat: HeartbeatOptions | null
  readonly #maxFrameBytes: number
  #timer: NodeJS.Timeout | null = null

  constructor (options: RelayOptions = {}) {
    super()
    this.#heartbeat = options.heartbeat ?? null
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  }

  /** Starts relaying `source` through `handler`. */
  attach (source: Readable, handler: FrameHandler): this {
    if (this.destroyed || this.#finished) {
      source.destroy()
      return this
    }
    this.#source = source
    this.#handler = handler
    source.on('data', (chunk: Buffer) => {
      try {
        this.#onData(chunk)
      } catch (error) {
        this.#abort(new UnreadableFrameError(error))
      }
    })
    source.once('end', () => this.#onEnd())
    // `on`, not `once`: destroying the body after a failure may make it emit again, and an unheard 'error' throws.
    source.on('error', (error: Error) => this.#onError(error))
    return this
  }

  /** True once the stream ended with an error event (`fail`, an unreadable or oversized event, a broken upstream). */
  failed = false

  /**
   * Ends the stream with `event` (an error event; null for none): the upstream failed after the client already had
   * the headers, or the gateway is shutting down. The upstream body, if any, is destroyed, which aborts its request.
   */
  fail (event: string | null): void {
    if (this.destroyed || this.#finished) return
    this.failed = true
    this.#close(event, false)
  }

  /** Sends a keep-alive comment now (the headers go out with it). */
  beat (): void {
    if (this.#finished || this.destroyed) return
    this.push(this.#heartbeat?.text?.() ?? HEARTBEAT)
    this.#heartbeat?.onBeat?.()
    this.#timer?.refresh()
  }

  override _read (): void {
    this.#source?.resume()
    if (this.#heartbeat && this.#timer === null && !this.#finished) {
      // One timer per stream, pushed back (refresh, no allocation) whenever data flows: it fires only after a
      // full interval of silence.
      this.#timer = setInterval(() => this.beat(), this.#heartbeat.intervalMs).unref()
    }
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#stop()
    // Destroyed before the answer was complete: the client left, so the upstream request is aborted. After a
    // normal end the source has ended or is draining on its own; destroying it would abort a finished request
    // (and build an error with a stack trace on every stream).
    if (!this.#finished && this.#source && !this.#source.destroyed) this.#source.destroy()
    this.#finished = true
    this.#dropPending()
    callback(error)
  }

  #onData (chunk: Buffer): void {
    if (this.#finished) return // after [DONE]: drain quietly so the upstream connection can be reused
    this.#timer?.refresh()
    let buf = chunk
    // Where the first frame in `buf` ends, when the pending bytes already told.
    let next = -1
    if (this.#pendingBytes > 0) {
      const end = this.#endAcross(chunk)
      if (end === -1) {
        this.#hold(chunk)
        if (this.#pendingBytes > this.#maxFrameBytes) this.#abort(new FrameTooLargeError(this.#maxFrameBytes))
        return
      }
      next = this.#pendingBytes + end
      this.#pending.push(chunk)
      buf = Buffer.concat(this.#pending, this.#pendingBytes + chunk.length)
      this.#dropPending()
    }

    const handler = this.#handler!
    const max = this.#maxFrameBytes
    let start = 0
    let flushedTo = 0
    let parts: Array<Buffer | string> | null = null
    let failure: Error | null = null
    let end: number
    while (!handler.done && (end = next === -1 ? frameEnd(buf, start) : next) !== -1) {
      next = -1
      if (end - start > max) {
        failure = new FrameTooLargeError(max)
        break
      }
      let result: Buffer | string | null | undefined
      try {
        result = handler.frame(buf.subarray(start, end))
      } catch (error) {
        failure = new UnreadableFrameError(error)
        break
      }
      if (result !== undefined) {
        parts ??= []
        if (start > flushedTo) parts.push(buf.subarray(flushedTo, start))
        if (result !== null) parts.push(result)
        flushedTo = end
      }
      start = end
    }
    if (failure === null && !handler.done && start < buf.length) {
      if (buf.length - start > max) failure = new FrameTooLargeError(max)
      else this.#hold(buf.subarray(start))
    }

    let more = true
    if (parts === null) {
      if (start > 0) more = this.push(start === buf.length ? buf : buf.subarray(0, start))
    } else {
      if (start > flushedTo) parts.push(buf.subarray(flushedTo, start))
      if (parts.length > 0) more = this.push(parts.length === 1 ? parts[0] : Buffer.concat(parts.map(toBuffer)))
    }
    if (failure !== null) this.#abort(failure)
    else if (handler.done) this.#close(null)
    else if (!more) this.#source!.pause()
  }

  /**
   * Where, in `chunk`, the frame held in #pending ends: a blank line may start in the last two pending bytes
   * (\n|\n, \n|\r\n, \n\r|\n); otherwise it lies in `chunk` alone. Only the new bytes are searched.
   */
  #endAcross (chunk: Buffer): number {
    const first = chunk[0]
    if (this.#last === LF) {
      if (first === LF) return 1
      if (first === CR && chunk[1] === LF) return 2
    } else if (this.#last === CR && this.#beforeLast === LF && first === LF) {
      return 1
    }
    return frameEnd(chunk, 0)
  }

  #hold (part: Buffer): void {
    this.#pending.push(part)
    this.#pendingBytes += part.length
    if (part.length >= 2) {
      this.#beforeLast = part[part.length - 2]
      this.#last = part[part.length - 1]
    } else if (part.length === 1) {
      this.#beforeLast = this.#last
      this.#last = part[0]
    }
  }

  #dropPending (): void {
    this.#pending.length = 0
    this.#pendingBytes = 0
    this.#last = -1
    this.#beforeLast = -1
  }

  #onEnd (): void {
    if (this.#finished) return
    if (this.#pendingBytes > 0) {
      // The last event had no blank line after it: treat the end of the body as its terminator.
      this.#onData(BLANK_LINE)
      this.#dropPending()
      if (this.#finished) return
    }
    let tail: Buffer | string | null
    try {
      tail = this.#handler!.end()
    } catch (error) {
      return this.#abort(new UnreadableFrameError(error))
    }
    this.#close(tail)
  }

  #onError (error: Error): void {
    if (this.#finished || this.destroyed) return
    this.#abort(error)
  }

  /** Ends the stream with the handler's error event for `error`, and closes the upstream rather than reading on. */
  #abort (error: Error): void {
    if (this.#finished || this.destroyed) return
    let event: Buffer | string
    try {
      event = this.#handler!.fail(error)
    } catch {
      event = LAST_RESORT
    }
    this.failed = true
    this.#close(event, false)
  }

  /**
   * Ends the stream after `tail`. The upstream is drained after a normal end (its connection can be reused), else
   * destroyed. 'finishing' is emitted just before the end is pushed, for the writer that wants the end in the same write.
   */
  #close (tail: Buffer | string | null, drain = true): void {
    if (this.#finished) return
    this.#finished = true
    this.#stop()
    this.#dropPending()
    if (tail !== null) this.push(tail)
    this.emit('finishing')
    this.push(null)
    if (drain) this.#source?.resume()
    else if (this.#source && !this.#source.destroyed) this.#source.destroy()
  }

  #stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}

const toBuffer = (part: Buffer | string) => (typeof part === 'string' ? Buffer.from(part) : part)

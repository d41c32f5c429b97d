import { Readable } from 'node:stream'

/**
 * Decides, frame by frame, what of an upstream event stream reaches the client.
 * A frame is one whole SSE event including its blank-line terminator.
 */
export interface FrameHandler {
  /** undefined passes the frame's bytes through untouched; null drops it; anything else replaces it. */
  frame (frame: Buffer): Buffer | string | null | undefined
  /** The upstream ended normally; what to append (for example the [DONE] it forgot). */
  end (): Buffer | string | null
  /** The upstream failed mid-stream; the error event to send before closing. */
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
}

const HEARTBEAT = ': keep-alive\n\n'

/**
 * Relays an upstream SSE body to the client as bytes arrive. Complete frames the handler leaves alone are
 * forwarded as the very buffers undici produced, without decoding; only an event split across reads waits
 * for its remainder. Backpressure flows to the upstream socket, and destroying the relay (the client went
 * away) destroys the upstream body, which aborts the upstream request.
 *
 * The relay can be sent to the client before the upstream has answered (`attach` comes later): while nothing
 * flows it sends `: keep-alive` comments, which clients ignore and which keep proxies with idle timeouts
 * (nginx, load balancers) from cutting a stream whose model is still thinking.
 */
export class SseRelay extends Readable {
  #source: Readable | null = null
  #handler: FrameHandler | null = null
  #pending: Buffer | null = null
  #finished = false
  readonly #heartbeat: HeartbeatOptions | null
  #timer: NodeJS.Timeout | null = null

  constructor (heartbeat: HeartbeatOptions | null = null) {
    super()
    this.#heartbeat = heartbeat
  }

  /** Starts relaying `source` through `handler`. */
  attach (source: Readable, handler: FrameHandler): this {
    if (this.destroyed || this.#finished) {
      source.destroy()
      return this
    }
    this.#source = source
    this.#handler = handler
    source.on('data', (chunk: Buffer) => this.#onData(chunk))
    source.once('end', () => this.#onEnd())
    source.once('error', (error: Error) => this.#onError(error))
    return this
  }

  /** True once `fail` ended the stream. */
  failed = false

  /** Ends the stream with `event` when the upstream failed after the client already had the headers. */
  fail (event: string): void {
    if (this.destroyed || this.#finished) return
    this.failed = true
    this.#close(event)
  }

  /** Sends a keep-alive comment now (the headers go out with it). */
  beat (): void {
    if (this.#finished || this.destroyed) return
    this.push(HEARTBEAT)
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
    callback(error)
  }

  #onData (chunk: Buffer): void {
    if (this.#finished) return // after [DONE]: drain quietly so the upstream connection can be reused
    const buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk])
    this.#pending = null
    const handler = this.#handler!
    let start = 0
    let flushedTo = 0
    let parts: Array<Buffer | string> | null = null
    let end: number
    while (!handler.done && (end = frameEnd(buf, start)) !== -1) {
      const result = handler.frame(buf.subarray(start, end))
      if (result !== undefined) {
        parts ??= []
        if (start > flushedTo) parts.push(buf.subarray(flushedTo, start))
        if (result !== null) parts.push(result)
        flushedTo = end
      }
      start = end
    }
    if (!handler.done && start < buf.length) this.#pending = buf.subarray(start)

    let more = true
    if (parts === null) {
      if (start > 0) more = this.push(start === buf.length ? buf : buf.subarray(0, start))
    } else {
      if (start > flushedTo) parts.push(buf.subarray(flushedTo, start))
      if (parts.length > 0) more = this.push(parts.length === 1 ? parts[0] : Buffer.concat(parts.map(toBuffer)))
    }
    this.#timer?.refresh()
    if (handler.done) this.#close(null)
    else if (!more) this.#source!.pause()
  }

  #onEnd (): void {
    if (this.#finished) return
    if (this.#pending !== null) {
      // The last event had no blank line after it: treat the end of the body as its terminator.
      const last = Buffer.concat([this.#pending, Buffer.from('\n\n')])
      this.#pending = null
      this.#onData(last)
      this.#pending = null
      if (this.#finished) return
    }
    this.#close(this.#handler!.end())
  }

  #onError (error: Error): void {
    if (this.#finished || this.destroyed) return
    this.#close(this.#handler!.fail(error))
  }

  #close (tail: Buffer | string | null): void {
    if (this.#finished) return
    this.#finished = true
    this.#stop()
    if (tail !== null) this.push(tail)
    this.push(null)
    this.#source?.resume()
  }

  #stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}

const toBuffer = (part: Buffer | string) => (typeof part === 'string' ? Buffer.from(part) : part)

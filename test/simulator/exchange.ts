import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { setImmediate, setTimeout } from 'node:timers/promises'
import type { RecordedRequest } from './types.ts'

/**
 * One request/response pair. Every wait takes the request's abort signal, so a
 * client that goes away (or sim.close()) clears all pending timers at once.
 */
export interface Exchange {
  req: IncomingMessage
  res: ServerResponse
  rec: RecordedRequest
  requestId: string
  signal: AbortSignal
  /** True once the simulator itself cut the connection (reset faults). */
  selfClosed: boolean
  head (status: number, headers: OutgoingHttpHeaders): void
  write (chunk: string | Buffer): Promise<void>
  end (chunk?: string | Buffer): void
  destroy (): void
  sleep (ms: number | undefined): Promise<void>
  stall (): Promise<void>
}

export function createExchange (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, signal: AbortSignal): Exchange {
  const ex: Exchange = {
    req,
    res,
    rec,
    requestId: randomUUID(),
    signal,
    selfClosed: false,
    head (status, headers) {
      res.writeHead(status, headers)
    },
    async write (chunk) {
      signal.throwIfAborted()
      rec.firstByteAt ??= performance.now()
      // Wait until the bytes reach the socket, so a following reset cannot discard them.
      await untilAborted(signal, new Promise<void>((resolve, reject) => {
        res.write(chunk, (err) => err ? reject(err) : resolve())
      }))
    },
    end (chunk) {
      signal.throwIfAborted()
      if (chunk !== undefined && chunk.length > 0) rec.firstByteAt ??= performance.now()
      res.end(chunk)
    },
    destroy () {
      ex.selfClosed = true
      res.destroy()
    },
    async sleep (ms) {
      if (ms !== undefined && ms > 0) await setTimeout(ms, undefined, { signal })
      else await setImmediate(undefined, { signal })
    },
    async stall () {
      await untilAborted(signal, new Promise<void>(() => {}))
    }
  }
  return ex
}

function untilAborted<T> (signal: AbortSignal, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

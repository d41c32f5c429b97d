import { errors } from 'undici'
import { GatewayError, upstreamConnectionLost, upstreamFrameTooLarge, upstreamProtocol, upstreamTimeout, upstreamUnreachable } from '../errors.ts'
import { FrameTooLargeError, UnreadableFrameError } from '../sse/relay.ts'
import { ChunkShapeError } from './chunk-transforms.ts'

/** Maps what undici throws (timeouts, refused or reset connections) to the status a client should see. */
export function fromUndiciError (error: unknown, host: string): GatewayError {
  if (error instanceof GatewayError) return error
  if (error instanceof errors.ConnectTimeoutError) return upstreamTimeout(host, 'connect', error)
  if (error instanceof errors.HeadersTimeoutError) return upstreamTimeout(host, 'headers', error)
  if (error instanceof errors.BodyTimeoutError) return upstreamTimeout(host, 'body', error)
  if (error instanceof errors.ResponseExceededMaxSizeError) return upstreamProtocol(host, 'the answer was too large')
  return upstreamUnreachable(host, error)
}

/** True when the error only says that we aborted the request ourselves (the client went away). */
export function isAbort (error: unknown): boolean {
  return error instanceof errors.RequestAbortedError ||
    (error instanceof Error && error.name === 'AbortError')
}

/**
 * A failure after the upstream had started answering: a timeout, a broken connection, or an event the relay
 * refused (too large, or one the stream handler could not parse or transform).
 */
export function fromMidStreamError (error: unknown, host: string): GatewayError {
  if (error instanceof errors.BodyTimeoutError) return upstreamTimeout(host, 'body', error)
  if (error instanceof FrameTooLargeError) return upstreamFrameTooLarge(host, error.maxBytes)
  if (error instanceof UnreadableFrameError) return upstreamProtocol(host, unreadable(error.cause), error.cause)
  return upstreamConnectionLost(host, error)
}

function unreadable (cause: unknown): string {
  if (cause instanceof SyntaxError) return 'an event was not valid JSON'
  if (cause instanceof ChunkShapeError) return `an event had an unexpected shape (${cause.message})`
  return 'an event had a shape the gateway could not handle'
}

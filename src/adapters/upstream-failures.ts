import { errors } from 'undici'
import { GatewayError, upstreamConnectionLost, upstreamProtocol, upstreamTimeout, upstreamUnreachable } from '../errors.ts'

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

/** A failure after the upstream had started answering: only a timeout or a broken connection is left. */
export function fromMidStreamError (error: unknown, host: string): GatewayError {
  if (error instanceof errors.BodyTimeoutError) return upstreamTimeout(host, 'body', error)
  return upstreamConnectionLost(host, error)
}

import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { invalidRequest } from '../errors.ts'

// Requests so broken that they never reach a route (malformed HTTP, undecodable URLs, a bad Expect header) still
// get OpenAI's envelope, never Fastify's or Node's own bodies.

const envelope = (message: string, code: string) => JSON.stringify(invalidRequest(message, null, code).toJSON())

/** Node's parser rejected the bytes: answer on the raw socket, then close it (the stream cannot be trusted). */
export function clientErrorHandler (error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) return
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW'
  const [status, text] = tooLarge ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request']
  const body = tooLarge
    ? envelope('The request headers (or URL) are too large.', 'headers_too_large')
    : envelope('The request is not valid HTTP/1.1.', 'malformed_request')
  socket.end([
    `HTTP/1.1 ${status} ${text}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${randomUUID()}`,
    'Connection: close',
    '',
    body
  ].join('\r\n'))
}

/** Fastify's own early errors: an URL whose %-escapes do not decode (FST_ERR_BAD_URL), and the like. */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const message = error.code === 'FST_ERR_BAD_URL' ? 'The request URL has an invalid percent-encoding.' : 'The request could not be routed.'
  reply.code(400).header('x-request-id', request.id).type('application/json; charset=utf-8').send(envelope(message, 'invalid_url'))
}

/** `Expect` values other than 100-continue: Node would answer 417 with an empty body. */
export function rejectExpectation (_request: IncomingMessage, response: ServerResponse): void {
  const body = envelope('Unsupported Expect header: only "100-continue" is understood.', 'expectation_failed')
  response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': randomUUID() })
  response.end(body)
}

/**
 * HTTP/1.1 requires Host (RFC 9112 §3.2). Node would refuse a request without one with an empty 400 of its own, so
 * its check is off (server options) and this hook refuses it instead, in the envelope.
 */
export async function requireHost (request: FastifyRequest): Promise<void> {
  if (request.raw.httpVersionMajor === 1 && request.raw.httpVersionMinor === 1 && request.headers.host === undefined) {
    throw invalidRequest('HTTP/1.1 requests need a Host header.', null, 'missing_host')
  }
}

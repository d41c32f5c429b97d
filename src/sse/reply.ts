import type { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'

/** Sends an event stream with the headers that keep proxies (nginx: x-accel-buffering) from buffering it. */
export function sendEventStream (reply: FastifyReply, stream: Readable) {
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .cacheControl('no-cache')
    .header('connection', 'keep-alive')
    .header('x-accel-buffering', 'no')
    .send(stream)
}

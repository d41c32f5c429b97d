import type { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'

// Room left under the socket's high-water mark for the chunked framing of the last events.
const FRAMING_ROOM = 4096

/**
 * Sends an event stream with the headers that keep proxies (nginx: x-accel-buffering) from buffering it.
 *
 * The relay's last events reach the socket on later ticks than the one that ended it, and the end of the chunked
 * body one tick later still: each went out in a write of its own, where a proxy sends one. So the socket is corked
 * from the moment the relay says it is finishing until its end is written, and the rest of the answer leaves in one
 * write. Only when all of it fits under the socket's high-water mark: a corked socket never drains, and a write
 * past that mark would wait for a drain, forever.
 */
export function sendEventStream (reply: FastifyReply, stream: Readable) {
  stream.once('finishing', () => {
    const socket = reply.raw.socket
    if (socket === null || socket.destroyed) return
    if (stream.readableLength + socket.writableLength + FRAMING_ROOM > socket.writableHighWaterMark) return
    socket.cork()
    let corked = true
    const uncork = () => {
      if (!corked) return
      corked = false
      // After the pipe's own 'end' listener wrote the end of the body.
      process.nextTick(() => socket.uncork())
    }
    stream.once('end', uncork)
    stream.once('close', uncork)
  })
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .cacheControl('no-cache')
    .header('connection', 'keep-alive')
    .header('x-accel-buffering', 'no')
    .send(stream)
}

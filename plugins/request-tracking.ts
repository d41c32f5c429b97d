import fp from 'fastify-plugin'

/**
 * Echoes the request id on every response, counts requests in flight for /health and /metrics, and writes
 * exactly one log line per request, also for clients that hang up before the answer is complete.
 */
export default fp(async function requestTracking (fastify) {
  const metrics = fastify.gatewayMetrics

  fastify.addHook('onRequest', async function trackRequest (request, reply) {
    reply.header('x-request-id', request.id)
    metrics.requestStarted()
    reply.raw.once('close', () => {
      metrics.requestEnded()
      request.log.info({
        method: request.method,
        url: request.url.split('?')[0],
        statusCode: reply.statusCode,
        responseTime: Math.round(reply.elapsedTime * 100) / 100
      }, reply.raw.writableFinished ? 'request completed' : 'client closed the connection before the answer was complete')
    })
  })
}, { name: 'request-tracking', dependencies: ['metrics'] })

import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { GatewayError } from '../src/errors.ts'

/**
 * When the event loop is saturated, new requests get a quick 503 (with Retry-After) instead of joining a queue
 * that makes every request late. Registered in the /v1 context only, so /health and /metrics still answer.
 */
export default fp(async function loadShedding (fastify) {
  const maxDelay = fastify.config.LOAD_SHED_EVENT_LOOP_DELAY_MS
  if (maxDelay === 0) return
  await fastify.register(underPressure, {
    maxEventLoopDelay: maxDelay,
    sampleInterval: Math.min(1000, Math.max(10, Math.floor(maxDelay / 2))),
    exposeStatusRoute: false,
    // A rejection reaches the gateway's error handler, which writes the envelope.
    async pressureHandler (request, _reply, type, value) {
      request.log.warn({ type, value }, 'shedding load')
      throw new GatewayError({
        statusCode: 503,
        type: 'server_error',
        code: 'overloaded',
        message: 'The gateway is overloaded; retry in a few seconds.',
        headers: { 'retry-after': '2', 'x-should-retry': 'true' },
        errorType: 'gateway_overloaded'
      })
    }
  })
}, { name: 'load-shedding', dependencies: ['config'] })

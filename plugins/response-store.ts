import fp from 'fastify-plugin'
import { memoryResponseStore, redisResponseStore, type ResponseStore } from '../src/state/response-store.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Stored Responses API answers: in Redis when the gateway has one (any replica serves the next turn), else in memory. */
    responseStore: ResponseStore
  }
}

/** The response store, in Redis with the other shared state, or bounded in memory (RESPONSE_STORE_MAX_MB). */
export default fp(async function responseStore (fastify) {
  const { config, redis } = fastify
  const ttlMs = config.RESPONSE_STORE_TTL_SECONDS * 1000
  const store = redis
    ? redisResponseStore(redis, ttlMs)
    : memoryResponseStore({ ttlMs, maxBytes: config.RESPONSE_STORE_MAX_MB * 1024 * 1024 })
  fastify.decorate('responseStore', store)
}, { name: 'response-store', dependencies: ['config', 'shared-state'] })

import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { memoryState, redisState, type SharedState } from '../src/state/shared-state.ts'

declare module 'fastify' {
  interface FastifyInstance {
    sharedState: SharedState
    /** The Redis connection when REDIS_URL is set (rate limits use it directly), else null. */
    redis: Redis | null
  }
}

/** Redis when REDIS_URL is set, memory otherwise. Losing Redis is logged once per outage, never fatal. */
export default fp(async function sharedState (fastify) {
  const url = fastify.config.REDIS_URL
  if (!url) {
    fastify.decorate('sharedState', memoryState())
    fastify.decorate('redis', null)
    fastify.gatewayMetrics.watchSharedState(() => ({ store: 'memory', up: true }))
    return
  }
  const options = {
    // Fail fast instead of queueing while Redis is away: a request must not wait for it.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
    lazyConnect: true
  }
  // Loaded only when used: a gateway without Redis does not carry the client's code in memory.
  const { Redis } = await import('ioredis')
  const client = new Redis(url, options)
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true })
  let outage = false
  const onError = (error: Error) => {
    if (outage) return
    outage = true
    fastify.log.warn({ err: { message: error.message } }, 'Redis unavailable: rate limits fail open and key cooldowns stay local until it is back')
  }
  client.on('error', onError)
  subscriber.on('error', () => {})
  client.on('ready', () => {
    if (outage) fastify.log.info('Redis is back: limits and key cooldowns are shared again')
    outage = false
  })
  try {
    await client.connect()
    await subscriber.connect()
  } catch (error) {
    onError(error as Error)
  }
  const state = redisState(client, subscriber, onError)
  fastify.decorate('sharedState', state)
  fastify.decorate('redis', client)
  fastify.gatewayMetrics.watchSharedState(() => ({ store: 'redis', up: state.available() }))
  fastify.addHook('onClose', async () => {
    await state.close()
  })
}, { name: 'shared-state', dependencies: ['config', 'metrics'] })

import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TokenCounts } from '../src/adapters/usage.ts'
import { GatewayError } from '../src/errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    limits: { tokenCharger: (request: FastifyRequest) => ((counts: TokenCounts) => void) | undefined }
  }
}

const WINDOW_MS = 60_000

// OpenAI's header names and its duration format ("12s"), which SDKs and agents already read.
const resetIn = (ms: number) => `${Math.max(1, Math.ceil(ms / 1000))}s`

function limitExceeded (limit: 'requests' | 'tokens', max: number, resetMs: number, who: string): GatewayError {
  const seconds = Math.max(1, Math.ceil(resetMs / 1000))
  return new GatewayError({
    statusCode: 429,
    type: limit,
    code: 'rate_limit_exceeded',
    message: `Rate limit reached for ${who}: ${max} ${limit} per minute. Retry in ${seconds} s.`,
    headers: { 'retry-after': String(seconds), 'x-should-retry': 'true' },
    errorType: 'client_rate_limited'
  })
}

/**
 * Per-client limits: requests per minute through @fastify/rate-limit, tokens per minute charged with the
 * upstream's real usage after each answer. Both live in Redis when REDIS_URL is set, so every replica draws on
 * one budget. If Redis is unreachable they fail open: requests are served unlimited rather than refused.
 */
export default fp(async function limits (fastify) {
  const { config, sharedState, gatewayMetrics } = fastify
  const anyLimit = config.RATE_LIMIT_RPM > 0 || config.RATE_LIMIT_TPM > 0 ||
    config.topology.clients.some(client => client.requestsPerMinute > 0 || client.tokensPerMinute > 0)
  if (!anyLimit) {
    // Nothing to count (the default): no hook, no per-request work.
    fastify.decorate('limits', { tokenCharger: () => undefined })
    return
  }
  const limitsOf = (request: FastifyRequest) => request.client ?? { name: `ip:${request.ip}`, requestsPerMinute: config.RATE_LIMIT_RPM, tokensPerMinute: config.RATE_LIMIT_TPM }

  await fastify.register(rateLimit, {
    global: false,
    redis: fastify.redis ?? undefined,
    nameSpace: 'qwen-gateway:requests:',
    skipOnError: true,
    timeWindow: WINDOW_MS,
    keyGenerator: request => limitsOf(request).name,
    max: async request => limitsOf(request).requestsPerMinute
  })
  const countRequest = fastify.createRateLimit()

  async function checkRequests (request: FastifyRequest, reply: FastifyReply, max: number) {
    const limit = await countRequest(request)
    if (limit.isAllowed) return
    reply.header('x-ratelimit-limit-requests', String(max))
    reply.header('x-ratelimit-remaining-requests', String(limit.remaining))
    reply.header('x-ratelimit-reset-requests', resetIn(limit.ttl))
    if (limit.isExceeded) {
      gatewayMetrics.rateLimited('requests')
      throw limitExceeded('requests', max, limit.ttl, request.client?.name ?? 'this address')
    }
  }

  async function checkTokens (request: FastifyRequest, reply: FastifyReply, max: number) {
    const { used, resetMs } = await sharedState.readTokens(limitsOf(request).name, WINDOW_MS)
    reply.header('x-ratelimit-limit-tokens', String(max))
    reply.header('x-ratelimit-remaining-tokens', String(Math.max(0, max - used)))
    reply.header('x-ratelimit-reset-tokens', resetIn(resetMs))
    if (used >= max) {
      gatewayMetrics.rateLimited('tokens')
      throw limitExceeded('tokens', max, resetMs, request.client?.name ?? 'this address')
    }
  }

  fastify.addHook('onRequest', async function enforceLimits (request, reply) {
    const { requestsPerMinute, tokensPerMinute } = limitsOf(request)
    if (requestsPerMinute > 0) await checkRequests(request, reply, requestsPerMinute)
    if (tokensPerMinute > 0) await checkTokens(request, reply, tokensPerMinute)
  })

  fastify.decorate('limits', {
    /** Charges an answer's tokens to the client's budget; undefined when the client has none. */
    tokenCharger (request: FastifyRequest) {
      const { name, tokensPerMinute } = limitsOf(request)
      if (tokensPerMinute <= 0) return undefined
      return (counts: TokenCounts) => {
        sharedState.addTokens(name, counts.prompt + counts.completion, WINDOW_MS).catch(() => {})
      }
    }
  })
}, { name: 'limits', dependencies: ['config', 'shared-state', 'metrics', 'client-auth'] })

import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TokenCounts } from '../src/adapters/usage.ts'
import { GatewayError } from '../src/errors.ts'
import type { Admission, Cost, Limits } from '../src/state/budgets.ts'
import { fingerprint } from '../src/upstream/key-ring.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a request costs its client's budget; one request and no tokens when the route does not say. */
    cost?: (request: FastifyRequest) => Cost
  }
  interface FastifyInstance {
    limits: { tokenCharger: (request: FastifyRequest) => ((counts: TokenCounts) => void) | undefined }
  }
  interface FastifyRequest {
    /** The tokens this request reserved at admission, settled with the real usage when it ends. */
    reservation: Reservation | null
  }
}

interface Reservation {
  client: string
  window: number
  reserved: number
  /** Tokens the upstream reported for this request (every prompt of a legacy request adds its own). */
  used: number | null
}

interface ClientLimits extends Limits {
  /** Where the budget is kept. */
  name: string
}

const ONE_REQUEST: Cost = { requests: 1, tokens: 0 }

// OpenAI's header names and its duration format ("12s"), which SDKs and agents already read.
const inSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))

function writeHeaders (reply: FastifyReply, limits: Limits, admission: Admission) {
  if (limits.requestsPerMinute > 0) {
    reply.header('x-ratelimit-limit-requests', String(limits.requestsPerMinute))
    reply.header('x-ratelimit-remaining-requests', String(Math.max(0, limits.requestsPerMinute - admission.requests)))
    reply.header('x-ratelimit-reset-requests', `${inSeconds(admission.resetMs)}s`)
  }
  if (limits.tokensPerMinute > 0) {
    reply.header('x-ratelimit-limit-tokens', String(limits.tokensPerMinute))
    reply.header('x-ratelimit-remaining-tokens', String(Math.max(0, limits.tokensPerMinute - admission.tokens)))
    reply.header('x-ratelimit-reset-tokens', `${inSeconds(admission.resetMs)}s`)
  }
}

function refusal (limit: 'requests' | 'tokens', limits: Limits, cost: Cost, admission: Admission, who: string): GatewayError {
  const max = limit === 'requests' ? limits.requestsPerMinute : limits.tokensPerMinute
  const asked = limit === 'requests' ? cost.requests : cost.tokens
  const what = limit === 'requests'
    ? `${asked} request${asked === 1 ? '' : 's'} (a legacy completion counts one per prompt)`
    : `${asked} tokens (the prompt, estimated, plus max_tokens or the default reserve for each answer)`
  if (asked > max) {
    // Waiting does not help: the request alone is larger than the whole budget.
    return new GatewayError({
      statusCode: 429,
      type: limit,
      code: 'rate_limit_exceeded',
      message: `Request too large for ${who}: it needs ${what}, and the limit is ${max} ${limit} per minute. Lower max_tokens or split the request.`,
      headers: { 'x-should-retry': 'false' },
      errorType: 'client_rate_limited'
    })
  }
  const seconds = inSeconds(admission.resetMs)
  const used = limit === 'requests' ? admission.requests : admission.tokens
  return new GatewayError({
    statusCode: 429,
    type: limit,
    code: 'rate_limit_exceeded',
    message: `Rate limit reached for ${who}: ${max} ${limit} per minute, ${used} used, and this request needs ${what}. Retry in ${seconds} s.`,
    headers: { 'retry-after': String(seconds), 'x-should-retry': 'true' },
    errorType: 'client_rate_limited'
  })
}

/**
 * Per-client budgets of requests and tokens per minute, in the /v1 context. A request is admitted (after its body
 * was validated) only if both budgets can take what it may cost, and its tokens are reserved in the same step;
 * when it ends, the reservation is settled with the upstream's real usage, or given back when no answer came.
 * In Redis when REDIS_URL is set, so every replica draws on one budget; if Redis fails, requests are let through.
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
  // Budgets are stored under a digest of the client's key, not its name: names are positions in a list (key-1 ...)
  // and would mix up two deployments sharing a Redis, or one whose keys were reordered.
  const budgetIds = new Map(config.topology.clients.map(client => [client, `key:${fingerprint(client.key)}`]))
  const limitsOf = (request: FastifyRequest): ClientLimits => request.client
    ? { name: budgetIds.get(request.client)!, requestsPerMinute: request.client.requestsPerMinute, tokensPerMinute: request.client.tokensPerMinute }
    : { name: `ip:${request.ip}`, requestsPerMinute: config.RATE_LIMIT_RPM, tokensPerMinute: config.RATE_LIMIT_TPM }

  function settle (reservation: Reservation, statusCode: number) {
    // No usage reported: an answer that began (a stream cut short) keeps its reservation, a refusal frees it.
    const spent = reservation.used ?? (statusCode < 400 ? reservation.reserved : 0)
    if (spent !== reservation.reserved) sharedState.budgets.settle(reservation.client, reservation.window, spent - reservation.reserved).catch(() => {})
  }

  fastify.decorateRequest('reservation', null)
  fastify.addHook('preHandler', async function admit (request, reply) {
    const limits = limitsOf(request)
    if (limits.requestsPerMinute === 0 && limits.tokensPerMinute === 0) return
    const cost = request.routeOptions.config.cost?.(request) ?? ONE_REQUEST
    const admission = await sharedState.budgets.admit(limits.name, cost, limits)
    writeHeaders(reply, limits, admission)
    if (!admission.allowed) {
      gatewayMetrics.rateLimited(admission.refusedBy!)
      throw refusal(admission.refusedBy!, limits, cost, admission, request.client?.name ?? 'this address')
    }
    if (limits.tokensPerMinute > 0 && cost.tokens > 0 && !admission.failedOpen) {
      const reservation: Reservation = { client: limits.name, window: admission.window, reserved: cost.tokens, used: null }
      request.reservation = reservation
      reply.raw.once('close', () => settle(reservation, reply.statusCode))
    }
  })

  fastify.decorate('limits', {
    /** Adds an answer's tokens to what the request will be charged; undefined when it reserved none. */
    tokenCharger (request: FastifyRequest) {
      const reservation = request.reservation
      if (reservation === null) return undefined
      return (counts: TokenCounts) => {
        reservation.used = (reservation.used ?? 0) + counts.prompt + counts.completion
      }
    }
  })
}, { name: 'limits', dependencies: ['config', 'shared-state', 'metrics', 'client-auth'] })

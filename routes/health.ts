import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { KEY_SCOPE, type Penalty } from '../src/upstream/key-ring.ts'
import { VERSION } from '../src/version.ts'

const Status = Type.Union([Type.Literal('ok'), Type.Literal('degraded')], {
  description: 'degraded: some upstream has no usable key right now'
})

const PenaltyFields = {
  reason: Type.Union([Type.String(), Type.Null()], { description: 'rate_limited, refused, quota or access_denied' }),
  retry_in_seconds: Type.Integer(),
  failures: Type.Optional(Type.Integer({ description: 'Consecutive failures: the backoff grows with them' })),
  upstream_message: Type.Optional(Type.String({ description: 'What the upstream said when it refused the key' }))
}

const KeyHealth = Type.Object({
  key: Type.String({ description: 'key-1, key-2 ...: the position in the configured list, never the key' }),
  state: Type.Union([Type.Literal('healthy'), Type.Literal('cooling'), Type.Literal('disabled')]),
  ...PenaltyFields,
  models: Type.Array(Type.Object({
    model: Type.String(),
    state: Type.Union([Type.Literal('cooling'), Type.Literal('disabled')]),
    ...PenaltyFields
  }), { description: 'Models this key may not serve right now (access denied, rate limited); it serves the others' })
})

const OperatorHealth = Type.Object({
  status: Status,
  version: Type.String(),
  uptime_seconds: Type.Number(),
  upstream: Type.Object({
    host: Type.String(),
    api_keys: Type.Integer({ description: 'How many keys the primary upstream has; the keys themselves are never shown.' }),
    warning: Type.Optional(Type.String())
  }),
  upstreams: Type.Array(Type.Object({
    name: Type.String(),
    host: Type.String(),
    keys: Type.Array(KeyHealth)
  })),
  shared_state: Type.Object({
    store: Type.Union([Type.Literal('memory'), Type.Literal('redis')]),
    available: Type.Boolean({ description: 'false while Redis is unreachable: limits then fail open' })
  }),
  in_flight: Type.Object({ requests: Type.Integer(), streams: Type.Integer() }),
  active_sessions: Type.Integer({ description: 'Conversations seen within SESSION_WINDOW_MS' })
}, { title: 'Health for operators (with a client key, or when no client keys are configured)' })

const PublicHealth = Type.Object({ status: Status }, { title: 'Health for anyone else' })

const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Object({
    upstream_keys: Type.Boolean({ description: 'Every upstream has a usable key (or needs none)' }),
    shared_state: Type.Boolean({ description: 'Redis answers, when REDIS_URL is set. Information only: without Redis a replica still serves (limits fail open, key cooldowns stay local), so it stays ready' })
  })
})

/**
 * /health for people and dashboards, /health/live and /health/ready for orchestrators. Cheap on purpose: they
 * answer from memory, never calling an upstream or Redis. Without a client key (when keys are configured) /health
 * says only ok or degraded: hosts, key states and the rest are for operators.
 */
const health: FastifyPluginAsyncTypebox = async function (fastify) {
  const { upstreams, gatewayMetrics, sharedState, sessions, clientKeys } = fastify
  const startedAt = performance.now()

  function penaltyView (penalty: Penalty, now: number) {
    return {
      reason: penalty.reason,
      retry_in_seconds: Math.max(0, Math.ceil((penalty.until - now) / 1000)),
      failures: penalty.level,
      ...(penalty.refusal ? { upstream_message: penalty.refusal.message } : {})
    }
  }

  function upstreamHealth () {
    const now = Date.now()
    return upstreams.list.map(client => ({
      name: client.name,
      host: client.host,
      keys: client.keys.entries.map(entry => {
        const own = client.keys.active(entry, KEY_SCOPE)
        const models = [...entry.penalties.keys()].filter(scope => scope !== KEY_SCOPE).flatMap(model => {
          const penalty = client.keys.active(entry, model)
          if (penalty === null) return []
          return [{ model, state: penalty.reason === 'rate_limited' ? 'cooling' as const : 'disabled' as const, ...penaltyView(penalty, now) }]
        })
        return {
          key: entry.label,
          state: client.keys.state(entry),
          ...(own ? penaltyView(own, now) : { reason: null, retry_in_seconds: 0 }),
          models
        }
      })
    }))
  }

  /** Every upstream has a key it may use, or needs none: what clients are told agrees with this. */
  const keysUsable = () => upstreams.list.every(client =>
    client.keys.keyless || client.keys.entries.some(entry => client.keys.state(entry) === 'healthy'))

  const status = () => keysUsable() ? 'ok' as const : 'degraded' as const

  fastify.get('/health', {
    schema: {
      tags: ['Health'],
      summary: 'Gateway health',
      description: '`ok` or `degraded` for anyone. With a client key (or when GATEWAY_API_KEYS is not set) also the version, upstreams, key states, shared state and in-flight counts; never the keys themselves. Answered from memory, without calling an upstream.',
      response: { 200: Type.Union([OperatorHealth, PublicHealth]) }
    }
  }, async function getHealth (request) {
    if (clientKeys.required && clientKeys.identify(request) === null) return { status: status() }
    const primary = upstreams.primary
    return {
      status: status(),
      version: VERSION,
      uptime_seconds: Math.round((performance.now() - startedAt) / 1000),
      upstream: {
        host: primary.host,
        api_keys: primary.keys.entries.length,
        ...(primary.keys.keyless ? { warning: 'No DASHSCOPE_API_KEY is set: fine for a local vLLM or Ollama, refused by DashScope.' } : {})
      },
      upstreams: upstreamHealth(),
      shared_state: { store: sharedState.kind, available: sharedState.available() },
      in_flight: gatewayMetrics.inFlight(),
      active_sessions: sessions.active()
    }
  })

  // The process answers: nothing more. An orchestrator restarts a replica that stops answering this.
  fastify.get('/health/live', {
    schema: {
      tags: ['Health'],
      summary: 'Liveness',
      description: 'The process answers: for an orchestrator\'s liveness probe.',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) }
    }
  }, async function getLiveness () {
    return { status: 'ok' as const }
  })

  // Worth sending traffic to: load balancers and rolling updates wait for this. Redis is shared by every replica,
  // so its loss would make them all unready at once: on Kubernetes the Service would be left with no endpoint, and
  // the outage that limits fail open for would become a total one. Its state is reported, never a reason to refuse.
  fastify.get('/health/ready', {
    schema: {
      tags: ['Health'],
      summary: 'Readiness',
      description: '200 when every upstream has a usable key, else 503: load balancers and rolling updates wait for this. `checks.shared_state` is false while Redis (when REDIS_URL is set) does not answer; the replica stays ready then, serving with limits that fail open.',
      response: { 200: Readiness, 503: Readiness }
    }
  }, async function getReadiness (_request, reply) {
    const checks = { upstream_keys: keysUsable(), shared_state: sharedState.kind === 'memory' || sharedState.available() }
    const ready = checks.upstream_keys
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' as const : 'not_ready' as const, checks })
  })
}

export default health

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { VERSION } from '../src/version.ts'

const KeyHealth = Type.Object({
  key: Type.String({ description: 'key-1, key-2 ...: the position in the configured list, never the key' }),
  state: Type.Union([Type.Literal('healthy'), Type.Literal('cooling'), Type.Literal('disabled')]),
  reason: Type.Union([Type.String(), Type.Null()]),
  retry_in_seconds: Type.Integer()
})

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')], { description: 'degraded: no upstream key is usable right now' }),
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
})

/** Liveness and a summary for operators. Cheap on purpose: it never calls an upstream or Redis. */
const health: FastifyPluginAsyncTypebox = async function (fastify) {
  const { upstreams, gatewayMetrics, sharedState, sessions } = fastify
  const startedAt = performance.now()

  function upstreamHealth () {
    const now = Date.now()
    return upstreams.list.map(client => ({
      name: client.name,
      host: client.host,
      keys: client.keys.entries.map(entry => ({
        key: entry.label,
        state: client.keys.state(entry),
        reason: entry.until > now ? entry.reason : null,
        retry_in_seconds: Math.max(0, Math.ceil((entry.until - now) / 1000))
      }))
    }))
  }

  fastify.get('/health', { schema: { response: { 200: Health } } }, async function getHealth () {
    const list = upstreamHealth()
    const usable = list.some(upstream => upstream.keys.length === 0 || upstream.keys.some(key => key.state === 'healthy'))
    const primary = upstreams.primary
    return {
      status: usable ? 'ok' as const : 'degraded' as const,
      version: VERSION,
      uptime_seconds: Math.round((performance.now() - startedAt) / 1000),
      upstream: {
        host: primary.host,
        api_keys: primary.keys.entries.length,
        ...(primary.keys.keyless ? { warning: 'No DASHSCOPE_API_KEY is set: fine for a local vLLM or Ollama, refused by DashScope.' } : {})
      },
      upstreams: list,
      shared_state: { store: sharedState.kind, available: sharedState.available() },
      in_flight: gatewayMetrics.inFlight(),
      active_sessions: sessions.active()
    }
  })
}

export default health

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { VERSION } from '../src/version.ts'

const Health = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String(),
  uptime_seconds: Type.Number(),
  upstream: Type.Object({
    host: Type.String(),
    api_keys: Type.Integer({ description: 'How many upstream keys are configured; the keys themselves are never shown.' }),
    warning: Type.Optional(Type.String())
  }),
  in_flight: Type.Object({ requests: Type.Integer(), streams: Type.Integer() })
})

/** Liveness and a summary for operators. Cheap on purpose: it never calls the upstream. */
const health: FastifyPluginAsyncTypebox = async function (fastify) {
  const { upstream, gatewayMetrics } = fastify
  const startedAt = performance.now()

  fastify.get('/health', { schema: { response: { 200: Health } } }, async function getHealth () {
    return {
      status: 'ok' as const,
      version: VERSION,
      uptime_seconds: Math.round((performance.now() - startedAt) / 1000),
      upstream: {
        host: upstream.host,
        api_keys: upstream.keyCount,
        ...(upstream.keyCount === 0 ? { warning: 'No DASHSCOPE_API_KEY is set: fine for a local vLLM or Ollama, refused by DashScope.' } : {})
      },
      in_flight: gatewayMetrics.inFlight()
    }
  })
}

export default health

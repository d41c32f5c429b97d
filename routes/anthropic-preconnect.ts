import type { FastifyInstance } from 'fastify'

/**
 * Claude Code opens its connection early with `HEAD /api/hello` (wire-apis §0). Outside /v1 and without a key: it
 * carries no credentials and learns nothing but that the gateway is there.
 */
export default async function anthropicPreconnect (fastify: FastifyInstance) {
  fastify.head('/api/hello', { schema: { hide: true } }, async function hello (_request, reply) {
    return reply.code(204).send()
  })
}

import fp from 'fastify-plugin'
import sensible from '@fastify/sensible'

// reply.cacheControl() and friends; errors use the gateway's own OpenAI-shaped catalogue (src/errors.ts).
export default fp(async function sensiblePlugin (fastify) {
  await fastify.register(sensible)
}, { name: 'sensible' })

import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { VERSION } from '../src/version.ts'

/**
 * An OpenAPI document built from the routes' TypeBox schemas, at /openapi.json, with a browsable page at /docs.
 * Registered before the routes so that it sees them all.
 */
export default fp(async function openapi (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Qwen Gateway',
        version: VERSION,
        description: 'The OpenAI (Chat Completions, Responses, embeddings) and Anthropic Messages APIs over Qwen models (DashScope, vLLM, SGLang, Ollama, llama.cpp).'
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'One of GATEWAY_API_KEYS' } }
      },
      security: [{ bearer: [] }]
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } })
  fastify.get('/openapi.json', { schema: { hide: true } }, async function openapiDocument () {
    return fastify.swagger()
  })
}, { name: 'openapi' })

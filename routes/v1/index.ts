import type { FastifyInstance } from 'fastify'
import { invalidClientKey } from '../../src/errors.ts'
import { notFoundHandler } from '../../src/error-handler.ts'
import loadShedding from '../../plugins/load-shedding.ts'
import limits from '../../plugins/limits.ts'
import models from './models.ts'
import chatCompletions from './chat-completions.ts'
import completions from './completions.ts'
import responses from './responses.ts'
import messages from './messages.ts'
import embeddings from './embeddings.ts'

/**
 * The API, as one encapsulated context under /v1: whatever the router matched here (a route, or an unknown path
 * under /v1) passes the client key check, load shedding and the client limits. /health, /metrics and the docs
 * live outside it and never see these hooks.
 */
export default async function v1 (fastify: FastifyInstance) {
  const { clientKeys } = fastify
  if (clientKeys.required) {
    fastify.addHook('onRequest', async function requireClientKey (request) {
      request.client = clientKeys.identify(request)
      if (!request.client) throw invalidClientKey()
    })
  }
  await fastify.register(loadShedding)
  await fastify.register(limits)
  // Here, so that an unknown /v1 path without a key is a 401 like every other /v1 request.
  fastify.setNotFoundHandler(notFoundHandler)

  await fastify.register(models)
  await fastify.register(chatCompletions)
  await fastify.register(completions)
  await fastify.register(responses)
  await fastify.register(messages)
  await fastify.register(embeddings)
}

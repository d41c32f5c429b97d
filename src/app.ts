import type { FastifyInstance } from 'fastify'
import type { Config } from './config.ts'
import { errorHandler, notFoundHandler } from './error-handler.ts'
import { rejectExpectation, requireHost } from './http/protocol-errors.ts'
import configPlugin from '../plugins/config.ts'
import sensible from '../plugins/sensible.ts'
import metrics from '../plugins/metrics.ts'
import sharedState from '../plugins/shared-state.ts'
import responseStore from '../plugins/response-store.ts'
import upstream from '../plugins/upstream.ts'
import modelCatalog from '../plugins/model-catalog.ts'
import pipeline from '../plugins/pipeline.ts'
import sessions from '../plugins/sessions.ts'
import requestTracking from '../plugins/request-tracking.ts'
import clientAuth from '../plugins/client-auth.ts'
import openapi from '../plugins/openapi.ts'
import health from '../routes/health.ts'
import anthropicPreconnect from '../routes/anthropic-preconnect.ts'
import v1 from '../routes/v1/index.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body exactly as received, so it can go upstream unchanged. */
    rawBody: Buffer | null
  }
}

export interface AppOptions {
  config: Config
}

/**
 * The gateway as one plugin: shared services first, then one plugin per endpoint family. Registered in a
 * fixed order on purpose: request tracking sees every request, including those the key check refuses.
 */
export default async function app (fastify: FastifyInstance, options: AppOptions) {
  fastify.server.on('checkExpectation', rejectExpectation)
  fastify.addHook('onRequest', requireHost)
  fastify.decorateRequest('rawBody', null)
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, function parseJson (request, body, done) {
    const raw = body as Buffer
    request.rawBody = raw
    if (raw.length === 0) return done(Object.assign(new Error('empty body'), { code: 'FST_ERR_CTP_EMPTY_JSON_BODY', statusCode: 400 }))
    try {
      done(null, JSON.parse(raw.toString()))
    } catch {
      done(Object.assign(new Error('invalid JSON'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400 }))
    }
  })

  // Set before any route plugin is registered: each plugin context keeps the handler it was created with.
  fastify.setErrorHandler(errorHandler(options.config.BODY_LIMIT))
  fastify.setNotFoundHandler(notFoundHandler)

  await fastify.register(configPlugin, { config: options.config })
  await fastify.register(sensible)
  await fastify.register(metrics)
  await fastify.register(sharedState)
  await fastify.register(responseStore)
  await fastify.register(upstream)
  await fastify.register(modelCatalog)
  await fastify.register(pipeline)
  await fastify.register(sessions)
  await fastify.register(requestTracking)
  await fastify.register(clientAuth)
  await fastify.register(openapi)

  await fastify.register(health)
  await fastify.register(anthropicPreconnect)
  await fastify.register(v1, { prefix: '/v1' })
}

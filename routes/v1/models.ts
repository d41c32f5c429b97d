import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { modelNotFound } from '../../src/errors.ts'
import { ModelSchema, ModelListSchema } from '../../src/schemas/models.ts'

const models: FastifyPluginAsyncTypebox = async function (fastify) {
  const catalog = fastify.modelCatalog

  fastify.get('/models', {
    schema: {
      tags: ['Models'],
      summary: 'List models',
      description: 'The models clients may use, in OpenAI\'s list shape: those the GATEWAY_CONFIG file declares, else the primary upstream\'s own list (cached), else MODELS.',
      response: { 200: ModelListSchema }
    }
  }, async function listModels () {
    return { object: 'list' as const, data: await catalog.list() }
  })

  // A wildcard, because self-hosted ids carry slashes (vLLM serves `Qwen/Qwen3-8B`) and not every client encodes them.
  fastify.get('/models/*', {
    schema: {
      tags: ['Models'],
      summary: 'Retrieve a model',
      description: 'One model by id. Ids may contain slashes (`Qwen/Qwen3-8B`): send them as they are or URL-encoded. An unknown id is a 404 with code `model_not_found`.',
      params: Type.Object({ '*': Type.String() }),
      response: { 200: ModelSchema }
    }
  }, async function retrieveModel (request) {
    const id = request.params['*']
    const model = await catalog.find(id)
    if (!model) throw modelNotFound(id)
    return model
  })
}

export default models

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { modelNotFound } from '../../src/errors.ts'
import { ModelSchema, ModelListSchema } from '../../src/schemas/models.ts'

const models: FastifyPluginAsyncTypebox = async function (fastify) {
  const catalog = fastify.modelCatalog

  fastify.get('/models', { schema: { response: { 200: ModelListSchema } } }, async function listModels () {
    return { object: 'list' as const, data: await catalog.list() }
  })

  // A wildcard, because self-hosted ids carry slashes (vLLM serves `Qwen/Qwen3-8B`) and not every client encodes them.
  fastify.get('/models/*', {
    schema: { params: Type.Object({ '*': Type.String() }), response: { 200: ModelSchema } }
  }, async function retrieveModel (request) {
    const id = request.params['*']
    const model = await catalog.find(id)
    if (!model) throw modelNotFound(id)
    return model
  })
}

export default models

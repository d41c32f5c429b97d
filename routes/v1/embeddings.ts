import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  batches, batchSizeFor, checkDimensions, embeddingsCost, embeddingsJson, inputsOf, readBatch, runBatches, upstreamPayload
} from '../../src/adapters/embeddings.ts'
import { abortOnClientClose } from '../../src/http/client-abort.ts'
import { upstreamCall } from '../../src/pipeline/request-call.ts'
import { EmbeddingRequestSchema, type EmbeddingRequest } from '../../src/schemas/embeddings.ts'
import { targetsFor } from '../../src/topology.ts'

/**
 * Embeddings, a translation at the edge of the pipeline: inputs split into batches the upstream accepts, one
 * pipeline call per batch (keys, retries, fallbacks, metrics, tokens), at most EMBEDDINGS_CONCURRENCY at a time,
 * joined back in input order.
 */
const embeddings: FastifyPluginAsyncTypebox = async function (fastify) {
  const { pipeline, config } = fastify

  fastify.post('/embeddings', {
    schema: {
      tags: ['Embeddings'],
      summary: 'Create embeddings',
      description: 'OpenAI embeddings for a string or an array of strings, split into batches the upstream accepts and joined back in input order. `dimensions` for models that support it (text-embedding-v4); `encoding_format: base64` for packed floats.',
      body: EmbeddingRequestSchema
    },
    config: { cost: request => embeddingsCost(request.body as EmbeddingRequest) }
  }, async function createEmbeddings (request, reply) {
    const body = request.body
    const targets = targetsFor(config.topology, body.model)
    const refused = checkDimensions(targets.map(target => target.model), body.dimensions)
    if (refused) throw refused

    const chunks = batches(inputsOf(body), batchSizeFor(config.topology, targets, config.EMBEDDINGS_BATCH_SIZE))
    // One controller for every batch: the client leaving, or one batch failing, stops them all.
    const abort = abortOnClientClose(reply.raw)
    const parts = await runBatches(chunks.length, config.EMBEDDINGS_CONCURRENCY, abort, async i => {
      // A single string goes out as the client sent it.
      const input = typeof body.input === 'string' ? body.input : chunks[i]
      const call = upstreamCall(request, reply, {
        api: 'embeddings',
        model: body.model,
        payloadFor: (model: string) => upstreamPayload(body, model, input),
        abort
      })
      return readBatch(await pipeline.embed(call), chunks[i].length, body.model)
    })
    reply.type('application/json; charset=utf-8')
    return embeddingsJson(body.model, parts, body.encoding_format === 'base64')
  })
}

export default embeddings

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { chatPayloads } from '../../src/adapters/chat-request.ts'
import { ChatStreamHandler } from '../../src/adapters/chat-stream.ts'
import { abortOnClientClose } from '../../src/http/client-abort.ts'
import { ChatCompletionRequestSchema } from '../../src/schemas/chat.ts'
import { sendEventStream } from '../../src/sse/reply.ts'
import { targetsFor } from '../../src/topology.ts'

const chatCompletions: FastifyPluginAsyncTypebox = async function (fastify) {
  const { chatService, limits, config } = fastify

  fastify.post('/v1/chat/completions', { schema: { body: ChatCompletionRequestSchema } }, async function createChatCompletion (request, reply) {
    const body = request.body
    const call = {
      model: body.model,
      targets: targetsFor(config.topology, body.model),
      payloadFor: chatPayloads(request.rawBody!, body),
      requestId: request.id,
      signal: abortOnClientClose(reply.raw).signal,
      receivedAt: performance.now() - reply.elapsedTime,
      operation: 'chat' as const,
      onTokens: limits.tokenCharger(request)
    }
    if (body.stream !== true) return chatService.complete(call)

    const includeUsage = body.stream_options?.include_usage === true
    const relay = await chatService.stream(call, (observer, context) => new ChatStreamHandler(includeUsage, observer, context))
    return sendEventStream(reply, relay)
  })
}

export default chatCompletions

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { chatPayloads } from '../../src/adapters/chat-request.ts'
import { ChatStreamHandler } from '../../src/adapters/chat-stream.ts'
import type { UpstreamContext } from '../../src/adapters/upstream-errors.ts'
import { XmlToolCallParser } from '../../src/adapters/xml-tools.ts'
import { abortOnClientClose } from '../../src/http/client-abort.ts'
import { chatCost } from '../../src/adapters/request-cost.ts'
import { ChatCompletionRequestSchema, type ChatCompletionRequest } from '../../src/schemas/chat.ts'
import { sessionId } from '../../src/sessions.ts'
import { sendEventStream } from '../../src/sse/reply.ts'
import { targetsFor } from '../../src/topology.ts'

const newXmlParser = () => new XmlToolCallParser()

const chatCompletions: FastifyPluginAsyncTypebox = async function (fastify) {
  const { chatService, limits, config, sessions } = fastify

  const reserve = config.RATE_LIMIT_DEFAULT_MAX_TOKENS

  fastify.post('/chat/completions', {
    schema: { body: ChatCompletionRequestSchema },
    config: { cost: request => chatCost(request.body as ChatCompletionRequest, request.rawBody?.length ?? 0, reserve) }
  }, async function createChatCompletion (request, reply) {
    const body = request.body
    const session = sessionId(request.headers['x-session-id'], body)
    sessions.touch(session)
    // Reasoning as <think> tags: asked per request by header, or set per model in GATEWAY_CONFIG.
    const thinkTags = request.headers['x-reasoning-format'] === 'think-tags' || config.topology.thinkTagModels.has(body.model)
    // tool_choice "none": the model was told not to call tools, so its text is not searched for calls.
    const usesTools = (body.tools?.length ?? 0) > 0 && body.tool_choice !== 'none'
    const answerOptions = (context: UpstreamContext) => ({ thinkTags, xmlTools: usesTools && !context.nativeTools ? newXmlParser : null })
    const call = {
      model: body.model,
      targets: targetsFor(config.topology, body.model),
      payloadFor: chatPayloads(request.rawBody!, body),
      session,
      client: request.client?.name ?? 'anonymous',
      answerOptions,
      requestId: request.id,
      signal: abortOnClientClose(reply.raw).signal,
      receivedAt: performance.now() - reply.elapsedTime,
      operation: 'chat' as const,
      onTokens: limits.tokenCharger(request)
    }
    if (body.stream !== true) return chatService.complete(call)

    const includeUsage = body.stream_options?.include_usage === true
    const relay = await chatService.stream(call, (observer, context) =>
      new ChatStreamHandler({ includeUsage, ...answerOptions(context) }, observer, context))
    return sendEventStream(reply, relay)
  })
}

export default chatCompletions

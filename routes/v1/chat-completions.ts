import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { chatPayloads } from '../../src/adapters/chat-request.ts'
import { chatCost } from '../../src/adapters/request-cost.ts'
import { answerShape } from '../../src/pipeline/answer.ts'
import { upstreamCall } from '../../src/pipeline/request-call.ts'
import { ChatCompletionRequestSchema, type ChatCompletionRequest } from '../../src/schemas/chat.ts'
import { sessionId } from '../../src/sessions.ts'
import { sendEventStream } from '../../src/sse/reply.ts'

/** Chat completions: the pipeline's own language, so the request goes out as it came and chunks pass through. */
const chatCompletions: FastifyPluginAsyncTypebox = async function (fastify) {
  const { pipeline, config, sessions } = fastify
  const reserve = config.RATE_LIMIT_DEFAULT_MAX_TOKENS

  fastify.post('/chat/completions', {
    schema: {
      tags: ['Chat Completions'],
      summary: 'Create a chat completion',
      description: 'OpenAI Chat Completions, passed to the upstream as sent. `stream: true` answers with server-sent events ending in `data: [DONE]` (`stream_options.include_usage` adds usage). Tools, JSON mode and reasoning (`reasoning_content`, or `<think>` tags with the header `x-reasoning-format: think-tags`) are supported.',
      body: ChatCompletionRequestSchema
    },
    config: { cost: request => chatCost(request.body as ChatCompletionRequest, request.rawBody?.length ?? 0, reserve) }
  }, async function createChatCompletion (request, reply) {
    const body = request.body
    const session = sessionId(request.headers['x-session-id'], body)
    sessions.touch(session)
    // Reasoning as <think> tags: asked per request by header, or set per model in GATEWAY_CONFIG.
    const thinkTags = request.headers['x-reasoning-format'] === 'think-tags' || config.topology.thinkTagModels.has(body.model)
    // tool_choice "none": the model was told not to call tools, so its text is not searched for calls.
    const usesTools = (body.tools?.length ?? 0) > 0 && body.tool_choice !== 'none'
    const call = upstreamCall(request, reply, {
      api: 'chat',
      model: body.model,
      payloadFor: chatPayloads(request.rawBody!, body),
      session,
      answer: answerShape(usesTools, thinkTags)
    })
    if (body.stream !== true) return pipeline.complete(call)
    const relay = await pipeline.stream(call, { includeUsage: body.stream_options?.include_usage === true })
    return sendEventStream(reply, relay)
  })
}

export default chatCompletions

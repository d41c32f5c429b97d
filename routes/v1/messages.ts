import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { translatedPayloads } from '../../src/adapters/chat-request.ts'
import { estimateInputTokens } from '../../src/adapters/messages/count-tokens.ts'
import { anthropicStatus, fromOpenAIEnvelope, toAnthropicError } from '../../src/adapters/messages/errors.ts'
import { claudeSession, showsThinking, toChatRequest, type MessagesRequest } from '../../src/adapters/messages/request.ts'
import { toAnthropicMessage } from '../../src/adapters/messages/response.ts'
import { MessagesEventWriter } from '../../src/adapters/messages/stream-writer.ts'
import { chatCost } from '../../src/adapters/request-cost.ts'
import { settleError } from '../../src/error-handler.ts'
import { answerShape, gathersThinking } from '../../src/pipeline/answer.ts'
import { upstreamCall } from '../../src/pipeline/request-call.ts'
import { CountTokensRequestSchema, CountTokensResponseSchema, MessagesRequestSchema } from '../../src/schemas/messages.ts'
import { sessionId } from '../../src/sessions.ts'
import { sendEventStream } from '../../src/sse/reply.ts'
import { targetsFor } from '../../src/topology.ts'

/** The prompt's estimated size for an error message; 0 when the body never parsed. */
function estimateOf (request: FastifyRequest): number {
  try {
    return estimateInputTokens(toChatRequest(request.body as MessagesRequest))
  } catch {
    return 0
  }
}

/**
 * Anthropic Messages (wire-apis §2): a translation at the edge of the chat pipeline. The request becomes a chat
 * request, the answer an Anthropic message or its event stream, and every error on these routes, whoever raised it
 * (validation, the client key check, limits, load shedding, the upstream), Anthropic's envelope and status table.
 */
const messages: FastifyPluginAsyncTypebox = async function (fastify) {
  const { pipeline, config, sessions, modelLimits } = fastify
  const reserve = config.RATE_LIMIT_DEFAULT_MAX_TOKENS

  fastify.setErrorHandler(function handleAnthropicError (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
    const gatewayError = settleError(error, request, reply, config.BODY_LIMIT)
    if (!gatewayError) return reply
    const { statusCode, body } = toAnthropicError(gatewayError, request.id, () => estimateOf(request))
    return reply.code(statusCode).headers(gatewayError.headers).header('x-gateway-error-source', gatewayError.source)
      .type('application/json; charset=utf-8').send(body)
  })

  // Every answer carries Anthropic's request-id header; an error some plugin sent directly in OpenAI's envelope
  // (rather than throwing it) is rewritten, so an Anthropic client never sees another API's error shape.
  fastify.addHook('onSend', async function anthropicEnvelope (request, reply, payload) {
    reply.header('request-id', request.id)
    if (reply.statusCode < 400 || typeof payload !== 'string') return payload
    const statusCode = anthropicStatus({ statusCode: reply.statusCode, errorType: '' })
    const body = fromOpenAIEnvelope(payload, statusCode, request.id)
    if (body === null) return payload
    reply.code(statusCode).type('application/json; charset=utf-8')
    return JSON.stringify(body)
  })

  /** The tokens a request may cost its client: the prompt estimate, and max_tokens as the model can really give it. */
  function cost (request: FastifyRequest) {
    const body = request.body as MessagesRequest
    const ceiling = modelLimits.maxOutputTokens(targetsFor(config.topology, body.model)[0].model)
    const maxTokens = ceiling === null ? body.max_tokens : Math.min(body.max_tokens ?? ceiling, ceiling)
    return chatCost({ max_tokens: maxTokens }, request.rawBody?.length ?? 0, reserve)
  }

  fastify.post('/messages', {
    schema: {
      tags: ['Anthropic Messages'],
      summary: 'Create a message',
      description: 'The Anthropic Messages API (Claude Code, the Anthropic SDKs), translated to a chat request: text, images, tools, thinking. `stream: true` answers with Anthropic\'s event stream. Model names such as `claude-*` map to Qwen models through MODEL_ALIASES. The key may be sent as `x-api-key`; errors come in Anthropic\'s envelope.',
      body: MessagesRequestSchema
    },
    config: { cost }
  }, async function createMessage (request, reply) {
    const body = request.body as MessagesRequest
    const chat = toChatRequest(body)
    const session = sessionId(claudeSession(request.headers['x-claude-code-session-id'], body.metadata), chat)
    sessions.touch(session)
    const usesTools = Array.isArray(chat.tools) && chat.tool_choice !== 'none'
    const stream = body.stream === true
    const gather = gathersThinking(chat, targetsFor(config.topology, body.model), modelLimits)
    const call = upstreamCall(request, reply, {
      api: 'messages',
      model: body.model,
      payloadFor: translatedPayloads(gather ? { ...chat, stream: true } : chat, { limits: modelLimits }),
      session,
      answer: answerShape(usesTools)
    })
    const showThinking = showsThinking(body)
    if (!stream) {
      return toAnthropicMessage(await (gather ? pipeline.gather(call) : pipeline.complete(call)), {
        model: body.model,
        showThinking,
        onInvalidArguments: (name, args) => request.log.warn({ tool: name, bytes: args.length }, 'tool call arguments are not a JSON object: sent as {}')
      })
    }
    const writer = new MessagesEventWriter({ model: body.model, requestId: request.id, showThinking, estimate: () => estimateInputTokens(chat) })
    return sendEventStream(reply, await pipeline.stream(call, { writer }))
  })

  fastify.post('/messages/count_tokens', {
    schema: {
      tags: ['Anthropic Messages'],
      summary: 'Count tokens',
      description: 'An estimate of the input tokens a Messages request would use (the upstream has no tokenizer endpoint to ask).',
      body: CountTokensRequestSchema,
      response: { 200: CountTokensResponseSchema }
    }
  }, async function countTokens (request) {
    return { input_tokens: estimateInputTokens(toChatRequest(request.body as MessagesRequest)) }
  })
}

export default messages

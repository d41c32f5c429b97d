import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { translatedPayloads } from '../../src/adapters/chat-request.ts'
import { chatCost, estimatePromptTokens } from '../../src/adapters/request-cost.ts'
import { requestError } from '../../src/adapters/responses/failure.ts'
import { newResponseCore } from '../../src/adapters/responses/ids.ts'
import { identify, inlineReferences, pageOfItems, referencedIds } from '../../src/adapters/responses/items.ts'
import { createReasoningSealer, reasoningKey } from '../../src/adapters/responses/reasoning-token.ts'
import { chatRequest, refuseUnsupported, requestItems, type ResponsesBody } from '../../src/adapters/responses/request.ts'
import { responseFromCompletion, responseSetup } from '../../src/adapters/responses/response.ts'
import { ResponsesEventWriter } from '../../src/adapters/responses/stream-writer.ts'
import type { Item, ResponseObject } from '../../src/adapters/responses/types.ts'
import { GatewayError, invalidRequest, unsupportedParameter } from '../../src/errors.ts'
import { answerShape, gathersThinking } from '../../src/pipeline/answer.ts'
import { upstreamCall } from '../../src/pipeline/request-call.ts'
import {
  InputItemsQuery, InputTokensRequestSchema, ResponseIdParams, ResponseRequestSchema, RetrieveQuery
} from '../../src/schemas/responses.ts'
import { sessionId } from '../../src/sessions.ts'
import { sendEventStream } from '../../src/sse/reply.ts'
import { readableBy, storedConversation } from '../../src/state/response-store.ts'
import { targetsFor } from '../../src/topology.ts'

const notFound = (id: string, param: string | null = null) => new GatewayError({
  statusCode: 404,
  type: 'invalid_request_error',
  param,
  code: 'response_not_found',
  message: `Response with id '${id}' not found: it was never stored (store: false), was deleted, or has expired.`,
  errorType: 'client_invalid'
})

const storeUnavailable = (cause: unknown) => new GatewayError({
  statusCode: 503,
  type: 'server_error',
  code: 'response_store_unavailable',
  message: 'The response store is unavailable right now; retry, or send the whole conversation instead of previous_response_id.',
  headers: { 'x-should-retry': 'true' },
  errorType: 'gateway_internal',
  cause
})

/** Stored responses belong to the client key that created them: another client cannot read or continue them. */
const ownerOf = (request: FastifyRequest) => request.client?.name ?? null

/** The conversation, for key affinity: Codex names it in a session_id header and in prompt_cache_key. */
function sessionFor (request: FastifyRequest, body: ResponsesBody, messages: unknown) {
  const { headers } = request
  return sessionId(headers.session_id ?? headers['session-id'] ?? headers['x-session-id'] ?? body.prompt_cache_key, { user: body.user, messages: messages as [] })
}

const notSupported = (why: string) => invalidRequest(why, null, 'unsupported_endpoint')

/**
 * The Responses API as a translation at the edge of the chat pipeline: the request becomes a chat request, the answer
 * a Response (JSON) or the Responses event stream, and stored responses live in the response store.
 */
const responses: FastifyPluginAsyncTypebox = async function (fastify) {
  const { pipeline, config, sessions, responseStore, modelLimits } = fastify
  const sealer = createReasoningSealer(reasoningKey(config.REASONING_SECRET, config.topology.upstreams.flatMap(upstream => upstream.keys)))
  const reserve = config.RATE_LIMIT_DEFAULT_MAX_TOKENS

  async function fromStore<T> (read: () => Promise<T>): Promise<T> {
    try {
      return await read()
    } catch (error) {
      throw storeUnavailable(error)
    }
  }

  /** The earlier turns (previous_response_id's chain) and this request's items, references inlined, ids minted. */
  async function conversation (body: ResponsesBody, core: string, owner: string | null): Promise<{ previous: Item[], input: Item[] }> {
    let previous: Item[] = []
    if (typeof body.previous_response_id === 'string') {
      const chain = await fromStore(() => storedConversation(responseStore, body.previous_response_id, owner))
      if (chain.missing !== null) throw notFound(chain.missing, 'previous_response_id')
      previous = chain.items
    }
    let input = requestItems(body.input)
    const references = referencedIds(input)
    if (references.length > 0) input = inlineReferences(input, await fromStore(() => responseStore.items(references, owner)))
    return { previous, input: identify(input, core) }
  }

  fastify.post('/responses', {
    schema: {
      tags: ['Responses'],
      summary: 'Create a response',
      description: 'The OpenAI Responses API (Codex, the Agents SDK), translated to a chat request: `input` as a string or items, function tools, reasoning, `previous_response_id` to continue a stored conversation. `stream: true` answers with the Responses event stream. Responses are stored for the client key that created them unless `store: false`.',
      body: ResponseRequestSchema
    },
    config: { cost: request => chatCost({ max_tokens: (request.body as ResponsesBody).max_output_tokens }, request.rawBody?.length ?? 0, reserve) }
  }, async function createResponse (request, reply) {
    const body = request.body as ResponsesBody
    const refused = refuseUnsupported(body)
    if (refused) throw refused
    const core = newResponseCore()
    const owner = ownerOf(request)
    const { previous, input } = await conversation(body, core, owner)
    const { chat, names, usesTools } = chatRequest(body, [...previous, ...input], sealer)
    const setup = responseSetup(body, names, sealer, core)
    const session = sessionFor(request, body, chat.messages)
    sessions.touch(session)
    const gather = gathersThinking(chat, targetsFor(config.topology, body.model), modelLimits)
    const call = upstreamCall(request, reply, {
      api: 'responses',
      model: body.model,
      payloadFor: translatedPayloads(gather ? { ...chat, stream: true } : chat, { limits: modelLimits, fillMaxTokens: true }),
      session,
      answer: answerShape(usesTools)
    })
    // store:false keeps nothing; otherwise a failed write costs the next turn, never this answer.
    const save = body.store === false
      ? undefined
      : (response: ResponseObject) => responseStore.put({ response, input, owner }).catch(error => request.log.warn({ err: error }, 'response not stored'))

    if (body.stream !== true) {
      const completion = await (gather ? pipeline.gather(call) : pipeline.complete(call)).catch(error => { throw requestError(error) })
      const response = responseFromCompletion(setup, completion)
      await save?.(response)
      return response
    }
    const writer = new ResponsesEventWriter(setup, { onFinal: save })
    const relay = await pipeline.stream(call, { writer }).catch(error => { throw requestError(error) })
    return sendEventStream(reply, relay)
  })

  fastify.post('/responses/input_tokens', {
    schema: {
      tags: ['Responses'],
      summary: 'Count input tokens',
      description: 'An estimate of the input tokens a Responses request would use, earlier turns of `previous_response_id` included (the upstream has no tokenizer endpoint to ask).',
      body: InputTokensRequestSchema
    }
  }, async function countInputTokens (request) {
    const body = { model: '', ...request.body } as ResponsesBody
    const refused = refuseUnsupported(body)
    if (refused) throw refused
    const { previous, input } = await conversation(body, newResponseCore(), ownerOf(request))
    const { chat } = chatRequest(body, [...previous, ...input], sealer)
    // An estimate (as for client budgets): the upstream has no tokenizer endpoint to ask.
    const counted = JSON.stringify({ messages: chat.messages, tools: chat.tools })
    return { object: 'response.input_tokens', input_tokens: estimatePromptTokens(Buffer.byteLength(counted)) }
  })

  fastify.get('/responses/:id', {
    schema: {
      tags: ['Responses'],
      summary: 'Retrieve a stored response',
      description: 'A response this client key created and stored, as JSON (`stream=true` is refused: a stored response is not replayed as events).',
      params: ResponseIdParams,
      querystring: RetrieveQuery
    }
  }, async function retrieveResponse (request) {
    if (request.query.stream === 'true') throw unsupportedParameter('stream', 'a stored response is returned as JSON; it cannot be replayed as a stream')
    const record = readableBy(await fromStore(() => responseStore.get(request.params.id)), ownerOf(request))
    if (!record) throw notFound(request.params.id)
    return record.response
  })

  fastify.delete('/responses/:id', {
    schema: { tags: ['Responses'], summary: 'Delete a stored response', description: 'Deletes a response this client key created.', params: ResponseIdParams }
  }, async function deleteResponse (request) {
    const { id } = request.params
    if (!readableBy(await fromStore(() => responseStore.get(id)), ownerOf(request)) || !await fromStore(() => responseStore.delete(id))) throw notFound(id)
    return { id, object: 'response', deleted: true }
  })

  fastify.get('/responses/:id/input_items', {
    schema: {
      tags: ['Responses'],
      summary: 'List input items',
      description: 'The input items of a stored response, a page at a time (`after`, `limit` from 1 to 100, `order`).',
      params: ResponseIdParams,
      querystring: InputItemsQuery
    }
  }, async function listInputItems (request) {
    const { after, order } = request.query
    const limit = request.query.limit === undefined ? 20 : Number(request.query.limit)
    if (!(limit >= 1 && limit <= 100)) throw invalidRequest('limit must be an integer from 1 to 100.', 'limit')
    const record = readableBy(await fromStore(() => responseStore.get(request.params.id)), ownerOf(request))
    if (!record) throw notFound(request.params.id)
    return pageOfItems(record.input, { after, limit, order })
  })

  fastify.post('/responses/:id/cancel', {
    schema: {
      tags: ['Responses'],
      summary: 'Cancel a response (not supported)',
      description: 'Always a 400 `unsupported_endpoint`: this gateway has no background mode, every response completes within its request.',
      params: ResponseIdParams
    }
  }, async function cancelResponse () {
    throw notSupported('Cancelling a response is not supported: this gateway has no background mode, every response completes within its request.')
  })

  fastify.post('/responses/compact', {
    schema: {
      tags: ['Responses'],
      summary: 'Compact a conversation (not supported)',
      description: 'Always a 400 `unsupported_endpoint`: send the history, or use `previous_response_id`.'
    }
  }, async function compactResponse () {
    throw notSupported('Compacting a conversation is not supported by this gateway: send the history, or use previous_response_id.')
  })
}

export default responses

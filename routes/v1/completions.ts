import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  chatPayloadFor, legacyStreamHandler, LegacyStreamState, prompts, refuseUnsupported, textCompletion
} from '../../src/adapters/legacy-completions.ts'
import { abortOnClientClose } from '../../src/http/client-abort.ts'
import { CompletionRequestSchema } from '../../src/schemas/completions.ts'
import { mergeEventStreams } from '../../src/sse/merge.ts'
import { sendEventStream } from '../../src/sse/reply.ts'
import { targetsFor } from '../../src/topology.ts'

/** Legacy completions, a thin translation over the chat path: one chat call per prompt, answers merged. */
const completions: FastifyPluginAsyncTypebox = async function (fastify) {
  const { chatService, limits, config } = fastify

  fastify.post('/completions', { schema: { body: CompletionRequestSchema } }, async function createCompletion (request, reply) {
    const body = request.body
    const refused = refuseUnsupported(body)
    if (refused) throw refused

    const stream = body.stream === true
    const n = body.n ?? 1
    // One controller for every prompt's call: the client leaving, or one call failing, stops them all.
    const abort = abortOnClientClose(reply.raw)
    const receivedAt = performance.now() - reply.elapsedTime
    const targets = targetsFor(config.topology, body.model)
    const onTokens = limits.tokenCharger(request)
    const calls = prompts(body).map(prompt => ({
      model: body.model,
      targets,
      payloadFor: (model: string) => chatPayloadFor(body, prompt, stream, model),
      client: request.client?.name ?? 'anonymous',
      requestId: request.id,
      signal: abort.signal,
      receivedAt,
      operation: 'completions' as const,
      onTokens
    }))
    const all = <T>(tasks: Array<Promise<T>>) => Promise.all(tasks).catch(error => {
      abort.abort()
      throw error
    })

    if (!stream) return textCompletion(await all(calls.map(call => chatService.complete(call))), n)

    const state = new LegacyStreamState(body.model)
    const relays = await all(calls.map((call, p) => chatService.stream(call, (observer, context) =>
      legacyStreamHandler(state, p * n, observer, context))))
    const includeUsage = body.stream_options?.include_usage === true
    const merged = mergeEventStreams(relays, () => state.closing(includeUsage), () => state.failed || relays.some(relay => relay.failed))
    return sendEventStream(reply, merged)
  })
}

export default completions

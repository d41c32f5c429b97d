import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  chatPayloadFor, legacyEventWriter, LegacyStreamState, prompts, refuseUnsupported, textCompletion
} from '../../src/adapters/legacy-completions.ts'
import { abortOnClientClose } from '../../src/http/client-abort.ts'
import { legacyCost } from '../../src/adapters/request-cost.ts'
import { CompletionRequestSchema, type CompletionRequest } from '../../src/schemas/completions.ts'
import { mergeEventStreams } from '../../src/sse/merge.ts'
import { sendEventStream } from '../../src/sse/reply.ts'
import { upstreamCall } from '../../src/pipeline/request-call.ts'

/** Legacy completions, a thin translation over the chat path: one chat call per prompt, answers merged. */
const completions: FastifyPluginAsyncTypebox = async function (fastify) {
  const { pipeline, config } = fastify

  const reserve = config.RATE_LIMIT_DEFAULT_MAX_TOKENS

  fastify.post('/completions', {
    schema: {
      tags: ['Completions'],
      summary: 'Create a completion (legacy)',
      description: 'OpenAI legacy text completions, served over the chat API: one chat call per prompt (`prompt` may be an array), `n` choices for each. `stream: true` answers with server-sent events.',
      body: CompletionRequestSchema
    },
    config: { cost: request => legacyCost(request.body as CompletionRequest, reserve) }
  }, async function createCompletion (request, reply) {
    const body = request.body
    const refused = refuseUnsupported(body)
    if (refused) throw refused

    const stream = body.stream === true
    const n = body.n ?? 1
    // One controller for every prompt's call: the client leaving, or one call failing, stops them all.
    const abort = abortOnClientClose(reply.raw)
    const calls = prompts(body).map(prompt => upstreamCall(request, reply, {
      api: 'completions',
      model: body.model,
      payloadFor: (model: string) => chatPayloadFor(body, prompt, stream, model),
      abort
    }))
    if (!stream) return textCompletion(await allOrNone(calls.map(call => pipeline.complete(call)), abort), n)

    const state = new LegacyStreamState(body.model)
    const relays = await allOrNone(calls.map((call, p) => pipeline.stream(call, { writer: legacyEventWriter(state, p * n) })),
      abort, relay => relay.destroy())
    const includeUsage = body.stream_options?.include_usage === true
    const merged = mergeEventStreams(relays, () => state.closing(includeUsage), () => state.failed || relays.some(relay => relay.failed))
    return sendEventStream(reply, merged)
  })
}

export default completions

/**
 * Every prompt's answer, or none: when one call fails the others are aborted, and what had already arrived is
 * discarded (an open stream is closed, so its upstream request ends and its gauge comes back) before the first
 * failure is thrown.
 */
async function allOrNone<T> (tasks: Array<Promise<T>>, abort: AbortController, discard?: (value: T) => void): Promise<T[]> {
  let failure: { error: unknown } | null = null
  for (const task of tasks) {
    task.catch((error: unknown) => {
      failure ??= { error }
      abort.abort()
    })
  }
  const settled = await Promise.allSettled(tasks)
  if (failure === null) return settled.map(result => (result as PromiseFulfilledResult<T>).value)
  for (const result of settled) if (result.status === 'fulfilled') discard?.(result.value)
  throw (failure as { error: unknown }).error
}

import type { FastifyReply, FastifyRequest } from 'fastify'
import { abortOnClientClose } from '../http/client-abort.ts'
import { targetsFor } from '../topology.ts'
import type { AnswerChoice, ApiFamily, UpstreamCall } from './service.ts'

export interface CallFields {
  api: ApiFamily
  /** The model the client asked for: resolved here through aliases and fallbacks. */
  model: string
  payloadFor: UpstreamCall['payloadFor']
  session?: string
  answer?: AnswerChoice
  /** Shared by several calls of one request (legacy prompts, embeddings batches): one failing stops the rest. */
  abort?: AbortController
}

/**
 * The pipeline call for one request, whatever its API: where the model is served, who asks (metrics and budgets),
 * and the signal that cancels the upstream when the client leaves.
 */
export function upstreamCall (request: FastifyRequest, reply: FastifyReply, fields: CallFields): UpstreamCall {
  const { config, limits } = request.server
  return {
    api: fields.api,
    model: fields.model,
    targets: targetsFor(config.topology, fields.model),
    payloadFor: fields.payloadFor,
    session: fields.session,
    client: request.client?.name ?? 'anonymous',
    answer: fields.answer,
    requestId: request.id,
    signal: (fields.abort ?? abortOnClientClose(reply.raw)).signal,
    receivedAt: performance.now() - reply.elapsedTime,
    onTokens: limits.tokenCharger(request),
    releaseBody: () => {
      request.body = undefined
      request.rawBody = null
    }
  }
}

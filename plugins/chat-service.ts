import type { Readable } from 'node:stream'
import fp from 'fastify-plugin'
import type { StreamObserver } from '../src/adapters/chat-stream.ts'
import { normaliseCompletion, type ChatCompletion } from '../src/adapters/chat-completion.ts'
import { fromUndiciError, isAbort } from '../src/adapters/upstream-failures.ts'
import { tokenCounts } from '../src/adapters/usage.ts'
import { upstreamProtocol, type GatewayError } from '../src/errors.ts'
import { SseRelay, type FrameHandler } from '../src/sse/relay.ts'

declare module 'fastify' {
  interface FastifyInstance {
    chatService: ReturnType<typeof createChatService>
  }
}

export interface ChatCall {
  model: string
  /** The exact bytes to send upstream: the client's own body whenever nothing had to change. */
  payload: string | Buffer
  requestId: string
  signal: AbortSignal
  /** performance.now() when the gateway received the request. */
  receivedAt: number
  operation: 'chat' | 'completions'
}

type Metrics = import('fastify').FastifyInstance['gatewayMetrics']
type UpstreamClient = import('fastify').FastifyInstance['upstream']

const seconds = (from: number) => (performance.now() - from) / 1000
const isEventStream = (type: unknown) => typeof type === 'string' && type.startsWith('text/event-stream')

/**
 * The chat path both /v1/chat/completions and /v1/completions travel: one upstream call, its errors mapped,
 * and its accounting (latency, time to first token, tokens, upstream errors) recorded in one place.
 */
export function createChatService (upstream: UpstreamClient, metrics: Metrics) {
  function recordFailure (call: ChatCall, error: GatewayError, sentAt: number, midStream = false) {
    const status = midStream
      ? 'stream'
      : error.errorType === 'upstream_timeout' ? 'timeout' : error.errorType === 'upstream_network' ? 'network' : error.statusCode
    metrics.upstreamError(status, error.errorType)
    metrics.upstream(call.operation, call.model, error.statusCode, seconds(sentAt))
  }

  async function send (call: ChatCall, stream: boolean) {
    const sentAt = performance.now()
    try {
      const response = await upstream.request({ method: 'POST', path: '/chat/completions', body: call.payload, signal: call.signal, requestId: call.requestId, stream })
      if (response.statusCode >= 200 && response.statusCode < 300) return { response, sentAt }
      throw await upstream.errorFrom(response)
    } catch (error) {
      if (!isAbort(error) && !call.signal.aborted) recordFailure(call, error as GatewayError, sentAt)
      throw error
    }
  }

  /** A non-streamed answer, normalised to OpenAI's shape; throws a GatewayError when there is none. */
  async function complete (call: ChatCall): Promise<ChatCompletion> {
    const { response, sentAt } = await send(call, false)
    let completion: ChatCompletion
    try {
      completion = await response.body.json() as ChatCompletion
    } catch (error) {
      const failure = call.signal.aborted ? error : (error instanceof SyntaxError ? upstreamProtocol(upstream.host, 'the body is not JSON') : fromUndiciError(error, upstream.host))
      if (!call.signal.aborted) recordFailure(call, failure as GatewayError, sentAt)
      throw failure
    }
    metrics.models.learn([call.model])
    metrics.upstream(call.operation, call.model, response.statusCode, seconds(sentAt))
    const counts = tokenCounts(completion.usage)
    if (counts) metrics.tokens(call.model, counts)
    return normaliseCompletion(completion)
  }

  /**
   * Opens an upstream stream; resolves once the upstream said 200 with an event stream (before that, failures
   * are still ordinary HTTP errors). `handlerFor` builds the frame handler that decides what the client sees.
   */
  async function openStream (call: ChatCall): Promise<{ body: Readable, sentAt: number }> {
    const { response, sentAt } = await send(call, true)
    if (!isEventStream(response.headers['content-type'])) {
      response.body.destroy()
      const error = upstreamProtocol(upstream.host, `expected text/event-stream, got ${String(response.headers['content-type'])}`)
      recordFailure(call, error, sentAt)
      throw error
    }
    metrics.models.learn([call.model])
    return { body: response.body, sentAt }
  }

  /** Observes a relayed stream for metrics; the relay counts as in flight until it closes. */
  function relay (call: ChatCall, opened: { body: Readable, sentAt: number }, handlerFor: (observer: StreamObserver) => FrameHandler): SseRelay {
    let failed: GatewayError | null = null
    const observer: StreamObserver = {
      firstToken: () => metrics.firstToken(call.model, seconds(call.receivedAt)),
      usage: usage => {
        const counts = tokenCounts(usage)
        if (counts) metrics.tokens(call.model, counts)
      },
      error: error => { failed = error }
    }
    const relayed = new SseRelay(opened.body, handlerFor(observer))
    metrics.streamStarted()
    relayed.once('close', () => {
      metrics.streamEnded()
      if (failed) recordFailure(call, failed, opened.sentAt, true)
      else if (!call.signal.aborted) metrics.upstream(call.operation, call.model, 200, seconds(opened.sentAt))
    })
    return relayed
  }

  /** Opens the stream and relays it in one step, for routes that need one upstream stream per request. */
  async function stream (call: ChatCall, handlerFor: (observer: StreamObserver) => FrameHandler): Promise<SseRelay> {
    return relay(call, await openStream(call), handlerFor)
  }

  return { complete, openStream, relay, stream }
}

export default fp(async function chatService (fastify) {
  fastify.decorate('chatService', createChatService(fastify.upstream, fastify.gatewayMetrics))
}, { name: 'chat-service', dependencies: ['upstream', 'metrics'] })

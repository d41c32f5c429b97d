import type { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { StreamObserver } from '../src/adapters/chat-stream.ts'
import { transformCompletion, type AnswerOptions, type ChatCompletion } from '../src/adapters/chunk-transforms.ts'
import type { UpstreamContext } from '../src/adapters/upstream-errors.ts'
import { fromUndiciError, isAbort } from '../src/adapters/upstream-failures.ts'
import { tokenCounts, type TokenCounts } from '../src/adapters/usage.ts'
import { GatewayError, gatewayShuttingDown, internalError, upstreamProtocol } from '../src/errors.ts'
import { dataEvent } from '../src/sse/event.ts'
import { SseRelay, type FrameHandler } from '../src/sse/relay.ts'
import type { Target } from '../src/topology.ts'

declare module 'fastify' {
  interface FastifyInstance {
    chatService: ReturnType<typeof createChatService>
  }
}

export interface ChatCall {
  /** The model the client asked for (metrics label). */
  model: string
  /** Where it can be served, in order: the primary, then fallbacks. */
  targets: Target[]
  /** The exact bytes to send to a target: the client's own body whenever nothing had to change. */
  payloadFor: (model: string, nativeTools: boolean) => string | Buffer
  /** The conversation, for key affinity; undefined spreads requests over the keys. */
  session?: string
  /** Who is asking, for per-client token metrics: a client key's name, or `anonymous`. */
  client: string
  /** How the answer is to be shaped for this client, given the upstream that serves it. */
  answerOptions?: (context: UpstreamContext) => Partial<AnswerOptions>
  requestId: string
  signal: AbortSignal
  /** performance.now() when the gateway received the request. */
  receivedAt: number
  operation: 'chat' | 'completions'
  /** Told the tokens of the answer once the upstream reported them (client token budgets). */
  onTokens?: (counts: TokenCounts) => void
}

export interface OpenedStream {
  body: Readable
  sentAt: number
  context: UpstreamContext
}

export interface ChatServiceOptions {
  /** Keep-alive comments on a stream whose upstream is silent, and how long to wait for its first byte. */
  heartbeatMs: number
  /** The largest upstream SSE event relayed (MAX_FRAME_BYTES). */
  maxFrameBytes: number
  log: FastifyBaseLogger
}

type Metrics = import('fastify').FastifyInstance['gatewayMetrics']
type Upstreams = import('fastify').FastifyInstance['upstreams']

const seconds = (from: number) => (performance.now() - from) / 1000
const isEventStream = (type: unknown) => typeof type === 'string' && type.startsWith('text/event-stream')

/**
 * The chat path both /v1/chat/completions and /v1/completions travel: the upstream call (with retries across
 * keys and fallbacks), its errors mapped, and its accounting (latency, time to first token, tokens, upstream
 * errors) recorded in one place.
 */
export function createChatService (upstreams: Upstreams, metrics: Metrics, options: ChatServiceOptions) {
  const { heartbeatMs, maxFrameBytes, log } = options
  /** The streams being relayed and the request each serves, for the shutdown to end those that outlive its grace period. */
  const open = new Map<SseRelay, string>()

  function recordFailure (call: ChatCall, error: GatewayError, sentAt: number, midStream = false) {
    const status = midStream
      ? 'stream'
      : error.errorType === 'upstream_timeout' ? 'timeout' : error.errorType === 'upstream_network' ? 'network' : error.statusCode
    metrics.upstreamError(status, error.errorType)
    metrics.upstream(call.operation, call.model, error.statusCode, seconds(sentAt))
  }

  function recordTokens (call: ChatCall, counts: TokenCounts | null) {
    if (!counts) return
    metrics.tokens(call.model, call.client, counts)
    call.onTokens?.(counts)
  }

  async function send (call: ChatCall, stream: boolean) {
    const sentAt = performance.now()
    try {
      const dispatched = await upstreams.dispatch({
        targets: call.targets,
        call: { method: 'POST', path: '/chat/completions', signal: call.signal, requestId: call.requestId, stream },
        payloadFor: call.payloadFor,
        affinity: call.session
      })
      return { ...dispatched, sentAt }
    } catch (error) {
      if (!isAbort(error) && !call.signal.aborted && error instanceof GatewayError && error.source === 'upstream') recordFailure(call, error, sentAt)
      throw error
    }
  }

  /** A non-streamed answer, normalised to OpenAI's shape; throws a GatewayError when there is none. */
  async function complete (call: ChatCall): Promise<ChatCompletion> {
    const { response, client, sentAt } = await send(call, false)
    let completion: ChatCompletion
    try {
      completion = await response.body.json() as ChatCompletion
    } catch (error) {
      if (call.signal.aborted) throw error
      const failure = error instanceof SyntaxError ? upstreamProtocol(client.host, 'the body is not JSON') : fromUndiciError(error, client.host)
      recordFailure(call, failure, sentAt)
      throw failure
    }
    metrics.models.learnOne(call.model)
    metrics.upstream(call.operation, call.model, response.statusCode, seconds(sentAt))
    recordTokens(call, tokenCounts(completion.usage))
    return transformCompletion(completion, { thinkTags: false, xmlTools: null, ...call.answerOptions?.(client.context) })
  }

  /** Resolves once an upstream said 200 with an event stream; before that, failures are ordinary HTTP errors. */
  async function openStream (call: ChatCall): Promise<OpenedStream> {
    const { response, client, sentAt } = await send(call, true)
    if (!isEventStream(response.headers['content-type'])) {
      response.body.destroy()
      const error = upstreamProtocol(client.host, `expected text/event-stream, got ${String(response.headers['content-type'])}`)
      recordFailure(call, error, sentAt)
      throw error
    }
    metrics.models.learnOne(call.model)
    return { body: response.body, sentAt, context: client.context }
  }

  /**
   * A relayed stream for the client. If the upstream answers within one heartbeat interval, its failures are
   * still HTTP errors (thrown here). If it takes longer (a long prefill), the relay is handed back anyway so the
   * client gets headers and keep-alive comments; a later failure then arrives as an error event.
   */
  async function stream (call: ChatCall, handlerFor: (observer: StreamObserver, context: UpstreamContext) => FrameHandler): Promise<SseRelay> {
    const relay = new SseRelay({ heartbeat: { intervalMs: heartbeatMs, onBeat: () => metrics.heartbeat() }, maxFrameBytes })
    let opened: OpenedStream | null = null
    let failed: GatewayError | null = null
    const observer: StreamObserver = {
      firstToken: () => metrics.firstToken(call.model, seconds(call.receivedAt)),
      usage: usage => recordTokens(call, tokenCounts(usage)),
      error: error => { failed = error }
    }
    metrics.streamStarted()
    open.set(relay, call.requestId)
    relay.once('close', () => {
      open.delete(relay)
      metrics.streamEnded()
      if (!opened) return
      if (failed) {
        recordFailure(call, failed, opened.sentAt, true)
        log.warn({ err: failed, reqId: call.requestId, upstream: opened.context.name }, 'stream ended with an error event')
      } else if (!call.signal.aborted && !relay.failed) {
        metrics.upstream(call.operation, call.model, 200, seconds(opened.sentAt))
      }
    })
    const attach = (stream: OpenedStream) => {
      opened = stream
      relay.attach(stream.body, handlerFor(observer, stream.context))
    }

    const opening = openStream(call)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<null>(resolve => { timer = setTimeout(resolve, heartbeatMs, null) })
    try {
      const first = await Promise.race([opening, late])
      if (first) {
        attach(first)
      } else {
        relay.beat()
        opening.then(attach, error => {
          if (!call.signal.aborted) relay.fail(dataEvent((error instanceof GatewayError ? error : internalError()).toJSON()))
        })
      }
      return relay
    } catch (error) {
      relay.destroy()
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Ends the streams still open with a `gateway_shutting_down` error event and closes their upstreams; returns how
   * many requests were told. A legacy request relays one stream per prompt into one response: only its first gets the
   * event, and the merged stream stops the others once one has failed. Whatever is still open a moment later ends
   * without a second event.
   */
  function endOpenStreams (): number {
    const event = dataEvent(gatewayShuttingDown().toJSON())
    const told = new Set<string>()
    for (const [relay, requestId] of open) {
      if (told.has(requestId)) continue
      told.add(requestId)
      relay.fail(event)
    }
    setTimeout(() => {
      for (const relay of open.keys()) relay.fail(null)
    }, 250).unref()
    return told.size
  }

  return { complete, stream, endOpenStreams }
}

export default fp(async function chatService (fastify) {
  const { config } = fastify
  const service = createChatService(fastify.upstreams, fastify.gatewayMetrics, {
    heartbeatMs: config.HEARTBEAT_INTERVAL_MS,
    maxFrameBytes: config.MAX_FRAME_BYTES,
    log: fastify.log
  })
  fastify.decorate('chatService', service)

  // close() waits for the streams in flight (src/server.ts gives it SHUTDOWN_GRACE_MS and a little more). Those still
  // open when the grace period runs out end with an error event, so their clients see why the answer stopped instead
  // of a cut connection.
  let deadline: NodeJS.Timeout | undefined
  fastify.addHook('preClose', function endStreamsAfterGrace (done) {
    deadline = setTimeout(() => {
      const ended = service.endOpenStreams()
      if (ended > 0) fastify.log.warn({ streams: ended, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutdown grace period over: open streams ended with an error event')
    }, config.SHUTDOWN_GRACE_MS).unref()
    done()
  })
  fastify.addHook('onClose', function clearShutdownDeadline (_instance, done) {
    clearTimeout(deadline)
    done()
  })
}, { name: 'chat-service', dependencies: ['upstream', 'metrics'] })

import type { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { ChatStreamHandler, type StreamObserver } from '../adapters/chat-stream.ts'
import { transformCompletion, type AnswerOptions, type ChatCompletion } from '../adapters/chunk-transforms.ts'
import type { UpstreamContext } from '../adapters/upstream-errors.ts'
import { fromUndiciError, isAbort } from '../adapters/upstream-failures.ts'
import { tokenCounts, type TokenCounts } from '../adapters/usage.ts'
import { GatewayError, gatewayShuttingDown, internalError, upstreamProtocol } from '../errors.ts'
import { dataEvent } from '../sse/event.ts'
import { SseRelay } from '../sse/relay.ts'
import type { Target } from '../topology.ts'
import { finished } from 'node:stream/promises'
import type { EventWriter } from '../adapters/event-writer.ts'
import { GatheredAnswer } from './gathered-answer.ts'

/** The API a request came in on: the `api` label of the pipeline's metrics. */
export type ApiFamily = 'chat' | 'completions' | 'responses' | 'messages' | 'embeddings'

/** How the answer is to be shaped for a client, given the upstream that serves it (XML tools, think tags). */
export type AnswerChoice = (context: UpstreamContext) => Partial<AnswerOptions>

export interface UpstreamCall {
  api: ApiFamily
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
  /** How the answer is to be shaped; chat answers are shaped only to normalise tool calls without it. */
  answer?: AnswerChoice
  requestId: string
  signal: AbortSignal
  /** performance.now() when the gateway received the request. */
  receivedAt: number
  /** Told the tokens of the answer once the upstream reported them (client token budgets). */
  onTokens?: (counts: TokenCounts) => void
  /** Lets go of the request's body, raw and parsed, once an upstream has accepted it (see `releaseBody`). */
  releaseBody?: () => void
}

export interface StreamOutput {
  /** The family's events; without one, chat chunks pass through (only what must change is parsed). */
  writer?: EventWriter
  /** Chat only: the client asked for the usage chunk. */
  includeUsage?: boolean
}

export interface OpenedStream {
  body: Readable
  sentAt: number
  context: UpstreamContext
}

export interface PipelineOptions {
  /** Keep-alive comments on a stream whose upstream is silent, and how long to wait for its first byte. */
  heartbeatMs: number
  /** The largest upstream SSE event relayed (MAX_FRAME_BYTES). */
  maxFrameBytes: number
  log: FastifyBaseLogger
}

type Metrics = import('fastify').FastifyInstance['gatewayMetrics']
type Path = '/chat/completions' | '/embeddings'
type Upstreams = import('fastify').FastifyInstance['upstreams']

const seconds = (from: number) => (performance.now() - from) / 1000
const alreadySent = (): never => { throw new Error('the request was already accepted by an upstream') }

/**
 * A stream holds its call until the answer ends, and an agent's body (raw and parsed) runs to hundreds of kilobytes:
 * held that long, it outlived young-generation collections, each of which copied it again (scavenges of 30 ms under
 * load, a fifth of an agent-size stream's CPU). Once an upstream accepted the request, nothing needs it any more.
 */
function releaseBody (call: UpstreamCall): void {
  call.payloadFor = alreadySent
  call.releaseBody?.()
}
const isEventStream = (type: unknown) => typeof type === 'string' && type.startsWith('text/event-stream')

/**
 * The one path every API family travels: the upstream call (with retries across keys and fallbacks), its errors
 * mapped, the answer shaped (tool calls normalised, XML tools, think tags), written in the family's events, and
 * accounted for (latency, time to first token, tokens, upstream errors) in one place. It knows upstream operations
 * (chat completions, embeddings), not routes: a family is a translation in and an event writer out.
 */
export function createPipeline (upstreams: Upstreams, metrics: Metrics, options: PipelineOptions) {
  const { heartbeatMs, maxFrameBytes, log } = options
  /**
   * The streams being relayed, the request each serves and how its API says it failed: for the shutdown to end
   * those that outlive its grace period.
   */
  const open = new Map<SseRelay, { requestId: string, errorEvent: (error: GatewayError) => string }>()

  function recordFailure (call: UpstreamCall, error: GatewayError, sentAt: number, midStream = false) {
    const status = midStream
      ? 'stream'
      : error.errorType === 'upstream_timeout' ? 'timeout' : error.errorType === 'upstream_network' ? 'network' : error.statusCode
    metrics.upstreamError(status, error.errorType)
    metrics.upstream(call.api, call.model, error.statusCode, seconds(sentAt))
  }

  function recordTokens (call: UpstreamCall, counts: TokenCounts | null) {
    if (!counts) return
    metrics.tokens(call.model, call.client, counts)
    call.onTokens?.(counts)
  }

  async function send (call: UpstreamCall, path: Path, stream: boolean) {
    const sentAt = performance.now()
    try {
      const dispatched = await upstreams.dispatch({
        targets: call.targets,
        call: { method: 'POST', path, signal: call.signal, requestId: call.requestId, stream },
        payloadFor: call.payloadFor,
        affinity: call.session
      })
      return { ...dispatched, sentAt }
    } catch (error) {
      if (!isAbort(error) && !call.signal.aborted && error instanceof GatewayError && error.source === 'upstream') recordFailure(call, error, sentAt)
      throw error
    }
  }

  /** A JSON answer from `path`, its tokens recorded; throws a GatewayError when there is none. */
  async function json<T extends { usage?: unknown }> (call: UpstreamCall, path: Path): Promise<{ body: T, context: UpstreamContext }> {
    const { response, client, sentAt } = await send(call, path, false)
    let body: T
    try {
      body = await response.body.json() as T
    } catch (error) {
      if (call.signal.aborted) throw error
      const failure = error instanceof SyntaxError ? upstreamProtocol(client.host, 'the body is not JSON') : fromUndiciError(error, client.host)
      recordFailure(call, failure, sentAt)
      throw failure
    }
    if (typeof body !== 'object' || body === null) {
      const failure = upstreamProtocol(client.host, 'the body is not a JSON object')
      recordFailure(call, failure, sentAt)
      throw failure
    }
    metrics.models.learnOne(call.model)
    metrics.upstream(call.api, call.model, response.statusCode, seconds(sentAt))
    recordTokens(call, tokenCounts(body.usage as ChatCompletion['usage']))
    return { body, context: client.context }
  }

  /** A non-streamed chat answer, normalised to OpenAI's shape and shaped for the client. */
  async function complete (call: UpstreamCall): Promise<ChatCompletion> {
    const { body, context } = await json<ChatCompletion>(call, '/chat/completions')
    return transformCompletion(body, { thinkTags: false, xmlTools: null, ...call.answer?.(context) })
  }

  /**
   * A non-streamed chat answer asked of the upstream as a stream and gathered (`payloadFor` must ask for a stream):
   * for upstreams that serve some answers as streams only (DashScope's Qwen3 thinking). Fails as `complete` would.
   */
  async function gather (call: UpstreamCall): Promise<ChatCompletion> {
    const answer = new GatheredAnswer()
    const relay = await stream(call, { writer: answer })
    // The events the writer returns are empty: draining the relay runs the stream through it.
    await finished(relay.resume()).catch((error: unknown) => {
      call.signal.throwIfAborted()
      throw error
    })
    call.signal.throwIfAborted()
    if (answer.error) throw answer.error
    return answer.completion()
  }

  /** Embeddings as the upstream returned them (usage recorded). */
  async function embed<T extends { usage?: unknown }> (call: UpstreamCall): Promise<T> {
    return (await json<T>(call, '/embeddings')).body
  }

  /** Resolves once an upstream said 200 with an event stream; before that, failures are ordinary HTTP errors. */
  async function openStream (call: UpstreamCall): Promise<OpenedStream> {
    const { response, client, sentAt } = await send(call, '/chat/completions', true)
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
  async function stream (call: UpstreamCall, output: StreamOutput = {}): Promise<SseRelay> {
    const { writer } = output
    const errorEvent = writer ? (error: GatewayError) => writer.fail(error) : (error: GatewayError) => dataEvent(error.toJSON())
    const relay = new SseRelay({
      heartbeat: { intervalMs: heartbeatMs, onBeat: () => metrics.heartbeat(), text: writer ? () => writer.heartbeat() : undefined },
      maxFrameBytes
    })
    let opened: OpenedStream | null = null
    let failed: GatewayError | null = null
    const observer: StreamObserver = {
      firstToken: () => metrics.firstToken(call.model, seconds(call.receivedAt)),
      usage: usage => recordTokens(call, tokenCounts(usage)),
      error: error => { failed = error }
    }
    metrics.streamStarted()
    open.set(relay, { requestId: call.requestId, errorEvent })
    relay.once('close', () => {
      open.delete(relay)
      metrics.streamEnded()
      if (!opened) return
      if (failed) {
        recordFailure(call, failed, opened.sentAt, true)
        log.warn({ err: failed, reqId: call.requestId, upstream: opened.context.name }, 'stream ended with an error event')
      } else if (!call.signal.aborted && !relay.failed) {
        metrics.upstream(call.api, call.model, 200, seconds(opened.sentAt))
      }
    })
    const attach = (stream: OpenedStream) => {
      opened = stream
      releaseBody(call)
      const answer = { thinkTags: false, xmlTools: null, ...call.answer?.(stream.context) }
      relay.attach(stream.body, new ChatStreamHandler({ ...answer, includeUsage: output.includeUsage ?? false, writer }, observer, stream.context))
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
          if (!call.signal.aborted) relay.fail(errorEvent(error instanceof GatewayError ? error : internalError()))
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
    const told = new Set<string>()
    for (const [relay, { requestId, errorEvent }] of open) {
      if (told.has(requestId)) continue
      told.add(requestId)
      relay.fail(errorEvent(gatewayShuttingDown()))
    }
    setTimeout(() => {
      for (const relay of open.keys()) relay.fail(null)
    }, 250).unref()
    return told.size
  }

  return { complete, gather, embed, stream, endOpenStreams }
}

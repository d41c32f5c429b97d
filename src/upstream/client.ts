import { Pool, type Dispatcher } from 'undici'
import { errorFromUpstreamBody, type UpstreamContext } from '../adapters/upstream-errors.ts'
import { fromUndiciError } from '../adapters/upstream-failures.ts'
import type { GatewayError } from '../errors.ts'
import type { UpstreamSpec } from '../topology.ts'
import { KeyRing, type KeyEntry, type KeyRingOptions } from './key-ring.ts'

export interface UpstreamCall {
  method: 'GET' | 'POST'
  /** Path below the base URL, for example `/chat/completions`. */
  path: string
  body?: string | Buffer
  signal?: AbortSignal
  requestId: string
  stream?: boolean
}

export interface PoolOptions {
  /** 0: as many connections as there are requests (undici's default); a stream holds one for its whole life. */
  connections: number
  connectTimeout: number
  headersTimeout: number
  bodyTimeout: number
  /** Told when a request has to wait because every allowed connection is busy (only with a cap). */
  onSaturated?: (upstream: string, connections: number) => void
}

// Error bodies are read only to build a message; a broken upstream must not make us buffer megabytes.
const ERROR_BODY_LIMIT = 64 * 1024

export type UpstreamClient = ReturnType<typeof createUpstreamClient>

/**
 * One upstream: an undici Pool for its origin (keep-alive, explicit timeouts) and the ring of its keys. There is
 * no overall deadline: `bodyTimeout` bounds the silence between chunks, so a stream lives as long as it flows.
 */
export function createUpstreamClient (spec: UpstreamSpec, pool: PoolOptions, keyOptions: KeyRingOptions) {
  const base = new URL(spec.baseUrl)
  const prefix = base.pathname.replace(/\/+$/, '')
  const keys = new KeyRing(spec.keys, keyOptions)
  const scrub = scrubber(spec.keys)
  const context: UpstreamContext = { name: spec.name, host: base.host, keyCount: spec.keys.length, nativeTools: spec.nativeTools }
  const dispatcher = new Pool(base.origin, {
    connections: pool.connections > 0 ? pool.connections : null,
    connectTimeout: pool.connectTimeout,
    headersTimeout: pool.headersTimeout,
    bodyTimeout: pool.bodyTimeout,
    keepAliveTimeout: 30_000
  })

  /** Requests waiting for a free connection: only ever more than 0 under a configured UPSTREAM_CONNECTIONS cap. */
  const waiting = () => pool.connections > 0 ? dispatcher.stats.queued : 0

  /** Sends a request; resolves with the response whatever its status, rejects only when no answer came. */
  async function request (call: UpstreamCall, key: KeyEntry | null): Promise<Dispatcher.ResponseData> {
    // A stream holds its connection for its whole life: under a cap, the next request would wait unseen.
    if (pool.connections > 0 && dispatcher.stats.size >= pool.connections) pool.onSaturated?.(spec.name, pool.connections)
    const headers: Record<string, string> = {
      accept: call.stream ? 'text/event-stream' : 'application/json',
      'x-request-id': call.requestId
    }
    if (call.body !== undefined) headers['content-type'] = 'application/json'
    if (key) headers.authorization = `Bearer ${key.secret}`
    try {
      return await dispatcher.request({ method: call.method, path: prefix + call.path, headers, body: call.body, signal: call.signal })
    } catch (error) {
      throw call.signal?.aborted ? error : fromUndiciError(error, context.host)
    }
  }

  /** Reads a failed answer (capped) into the OpenAI envelope, with every upstream key scrubbed from its text. */
  async function errorFrom (response: Dispatcher.ResponseData): Promise<GatewayError> {
    let text = ''
    try {
      for await (const chunk of response.body) {
        text += chunk.toString()
        if (text.length > ERROR_BODY_LIMIT) break
      }
    } catch {
      // A body that breaks while we read an error is still an error of the status we already have.
    } finally {
      if (!response.body.destroyed) response.body.destroy()
    }
    const retryAfter = response.headers['retry-after']
    return errorFromUpstreamBody(response.statusCode, scrub(text), context, typeof retryAfter === 'string' ? retryAfter : undefined)
  }

  return {
    name: spec.name,
    host: base.host,
    baseUrl: spec.baseUrl,
    context,
    keys,
    waiting,
    request,
    errorFrom,
    // By the time the app closes, the server has stopped and the grace period for streams is over.
    close: () => dispatcher.destroy()
  }
}

// Upstreams quote the key they refused, whole or masked ("Incorrect API key provided: sk-ab****wxyz"); a prefix
// is half a secret. Anything shaped like a DashScope or OpenAI key goes, and so does any word that starts like
// one of our keys (their first 8 characters).
const KEY_SHAPED = /\bsk-[\w*.-]{3,}/g
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export function scrubber (keys: string[]): (text: string) => string {
  const prefixes = keys.filter(key => key.length >= 12).map(key => escapeRegExp(key.slice(0, 8)))
  const ours = prefixes.length > 0 ? new RegExp(`(?:${prefixes.join('|')})[^\\s"',;)]*`, 'g') : null
  return text => {
    for (const key of keys) text = text.replaceAll(key, '[redacted]')
    if (ours !== null) text = text.replace(ours, '[redacted]')
    return text.replace(KEY_SHAPED, '[redacted]')
  }
}

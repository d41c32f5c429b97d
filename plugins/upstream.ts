import fp from 'fastify-plugin'
import { Pool, type Dispatcher } from 'undici'
import type { Config } from '../src/config.ts'
import { errorFromUpstreamBody, type UpstreamContext } from '../src/adapters/upstream-errors.ts'
import { fromUndiciError } from '../src/adapters/upstream-failures.ts'
import type { GatewayError } from '../src/errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    upstream: Upstream
  }
}

export interface UpstreamCall {
  method: 'GET' | 'POST'
  /** Path below the base URL, for example `/chat/completions`. */
  path: string
  body?: string | Buffer
  signal?: AbortSignal
  requestId: string
  stream?: boolean
}

export type Upstream = ReturnType<typeof createUpstream>

// Error bodies are read only to build a message; a broken upstream must not make us buffer megabytes.
const ERROR_BODY_LIMIT = 64 * 1024

/**
 * The one way to the upstream: an undici Pool per origin with keep-alive and explicit timeouts. There is no
 * overall deadline: `bodyTimeout` bounds the silence between chunks, so a long stream lives as long as it flows.
 */
export function createUpstream (config: Config) {
  const base = new URL(config.DASHSCOPE_BASE_URL)
  const prefix = base.pathname.replace(/\/+$/, '')
  const keys = config.DASHSCOPE_API_KEY
  const context: UpstreamContext = { host: base.host, keyCount: keys.length }
  const pool = new Pool(base.origin, {
    connections: config.UPSTREAM_CONNECTIONS,
    connectTimeout: config.UPSTREAM_CONNECT_TIMEOUT_MS,
    headersTimeout: config.UPSTREAM_HEADERS_TIMEOUT_MS,
    bodyTimeout: config.UPSTREAM_BODY_TIMEOUT_MS,
    keepAliveTimeout: 30_000
  })
  let nextKey = 0

  function headersFor (call: UpstreamCall): Record<string, string> {
    const headers: Record<string, string> = {
      accept: call.stream ? 'text/event-stream' : 'application/json',
      'x-request-id': call.requestId
    }
    if (call.body !== undefined) headers['content-type'] = 'application/json'
    if (keys.length > 0) {
      headers.authorization = `Bearer ${keys[nextKey]}`
      nextKey = (nextKey + 1) % keys.length
    }
    return headers
  }

  /** Sends a request; resolves with the response whatever its status, rejects only when no answer came. */
  async function request (call: UpstreamCall): Promise<Dispatcher.ResponseData> {
    try {
      return await pool.request({
        method: call.method,
        path: prefix + call.path,
        headers: headersFor(call),
        body: call.body,
        signal: call.signal
      })
    } catch (error) {
      throw call.signal?.aborted ? error : fromUndiciError(error, context.host)
    }
  }

  /** Reads a failed answer (capped) into the OpenAI envelope, with any upstream key scrubbed from its text. */
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

  function scrub (text: string): string {
    for (const key of keys) text = text.replaceAll(key, '[redacted]')
    return text
  }

  return {
    context,
    baseUrl: base.href.replace(/\/+$/, ''),
    host: base.host,
    keyCount: keys.length,
    request,
    errorFrom,
    // By the time the app closes, the server has stopped and the grace period for streams is over.
    close: () => pool.destroy()
  }
}

export default fp(async function upstream (fastify) {
  const client = createUpstream(fastify.config)
  fastify.decorate('upstream', client)
  fastify.addHook('onClose', async () => {
    await client.close()
  })
}, { name: 'upstream', dependencies: ['config'] })

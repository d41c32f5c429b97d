import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { invalidClientKey } from '../src/errors.ts'

const digest = (key: string) => createHash('sha256').update(key).digest()

/** The key a client presented: OpenAI SDKs send `Authorization: Bearer`, Anthropic-style tools `x-api-key`. */
function presentedKey (request: FastifyRequest): string | null {
  const authorization = request.headers.authorization
  if (authorization) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization)
    return match ? match[1].trim() : null
  }
  const apiKey = request.headers['x-api-key']
  return typeof apiKey === 'string' ? apiKey : null
}

/**
 * Every key is compared as a SHA-256 digest with timingSafeEqual, and every configured key is tried, so
 * neither the key's length nor its position in the list shows in the response time.
 */
export function createKeyCheck (keys: string[]) {
  const digests = keys.map(digest)
  return function isValidKey (candidate: string | null): boolean {
    const presented = digest(candidate ?? '')
    let valid = false
    for (const known of digests) valid = timingSafeEqual(known, presented) || valid
    return valid && candidate !== null
  }
}

/** Client keys guard the API under /v1; /health and /metrics stay open for probes and scrapers. */
export default fp(async function clientAuth (fastify) {
  const keys = fastify.config.GATEWAY_API_KEYS
  if (keys.length === 0) {
    fastify.log.warn('GATEWAY_API_KEYS is empty: the gateway accepts requests from anyone who can reach it')
    return
  }
  const isValidKey = createKeyCheck(keys)
  fastify.addHook('onRequest', async function checkClientKey (request) {
    if (!request.url.startsWith('/v1/')) return
    if (!isValidKey(presentedKey(request))) throw invalidClientKey()
  })
}, { name: 'client-auth', dependencies: ['config'] })

import { hash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { isLoopback } from '../src/config.ts'
import type { ClientSpec } from '../src/topology.ts'

declare module 'fastify' {
  interface FastifyInstance {
    clientKeys: {
      /** True when client keys are configured: /v1 then refuses requests without one, and /health shows less. */
      required: boolean
      /** The client whose key the request carries, or null. */
      identify (request: FastifyRequest): ClientSpec | null
    }
  }
  interface FastifyRequest {
    /** The client whose key the request carried; null when the gateway is open. */
    client: ClientSpec | null
  }
}

const digest = (key: string) => hash('sha256', key, 'buffer')

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
export function createKeyCheck (clients: ClientSpec[]) {
  const digests = clients.map(client => ({ client, digest: digest(client.key) }))
  return function clientFor (candidate: string | null): ClientSpec | null {
    const presented = digest(candidate ?? '')
    let found: ClientSpec | null = null
    for (const known of digests) {
      if (timingSafeEqual(known.digest, presented)) found = known.client
    }
    return candidate === null ? null : found
  }
}

/** Knows the client keys; the /v1 context enforces them, /health uses them to decide how much to show. */
export default fp(async function clientAuth (fastify) {
  const clients = fastify.config.topology.clients
  fastify.decorateRequest('client', null)
  if (clients.length === 0) {
    const { HOST, GATEWAY_ALLOW_OPEN } = fastify.config
    fastify.log.warn({ host: HOST }, GATEWAY_ALLOW_OPEN && !isLoopback(HOST)
      ? 'No client keys and GATEWAY_ALLOW_OPEN=true: anyone who can reach this address uses the upstream keys'
      : 'No client keys (GATEWAY_API_KEYS): listening on loopback only, so only this machine can use the gateway')
  }
  const clientFor = createKeyCheck(clients)
  fastify.decorate('clientKeys', {
    required: clients.length > 0,
    identify: (request: FastifyRequest) => clients.length === 0 ? null : clientFor(presentedKey(request))
  })
}, { name: 'client-auth', dependencies: ['config'] })

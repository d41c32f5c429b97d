import type { FastifyRequest } from 'fastify'

/**
 * Whether a request is for the API under /v1 (and so needs a client key). Decided first by the route the router
 * matched, never by the raw URL alone: the router also matches `/%761/models` and absolute-form targets
 * (`GET http://host/v1/models`), which a prefix test on `request.url` would let through without a key. Unknown
 * paths under /v1 count too, so that without a key they are a 401 like every other /v1 request.
 */
export function isApiRoute (request: FastifyRequest): boolean {
  const route = request.routeOptions.url
  return route === undefined ? request.url.startsWith('/v1/') : route.startsWith('/v1/')
}

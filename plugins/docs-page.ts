import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

// Headers that belong to the inner response's own connection, not to the one the page is sent on.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date'])

/**
 * The /docs page: Swagger UI and its static files, served by a small Fastify instance of their own that is built on
 * the first visit. Most gateways never serve the page, and its modules (the UI, a static file server, glob, mime
 * tables) would otherwise sit in every replica's memory from the start.
 */
export function lazyDocsPage (document: () => unknown, routePrefix: string) {
  let page: Promise<FastifyInstance> | null = null

  async function buildPage (): Promise<FastifyInstance> {
    const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
      import('fastify'), import('@fastify/swagger'), import('@fastify/swagger-ui')
    ])
    const ui = Fastify({ logger: false })
    await ui.register(swagger, { mode: 'static', specification: { document: document() } } as Parameters<typeof swagger>[1])
    await ui.register(swaggerUi, { routePrefix, uiConfig: { docExpansion: 'list' } })
    await ui.ready()
    return ui
  }

  return async function docsPage (request: FastifyRequest, reply: FastifyReply) {
    page ??= buildPage().catch(error => {
      page = null // a later visit tries again
      throw error
    })
    const answer = await (await page).inject({ method: request.method as 'GET' | 'HEAD', url: request.url, headers: request.headers })
    // No such file (or a path the static server refuses, such as an encoded NUL): the gateway's own 404 envelope.
    if (answer.statusCode >= 400) return reply.callNotFound()
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) reply.header(name, value)
    }
    return reply.code(answer.statusCode).send(answer.rawPayload.length > 0 ? answer.rawPayload : undefined)
  }
}

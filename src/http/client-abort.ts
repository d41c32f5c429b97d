import type { ServerResponse } from 'node:http'

/**
 * An AbortController that fires when the client goes away before its answer is complete.
 * It watches the response, not `request.signal`: on Fastify 5.12 with Node 24 that signal already fires once a
 * POST body has been read (fastify-style.md §6), which would abort every upstream call.
 */
export function abortOnClientClose (response: ServerResponse): AbortController {
  const controller = new AbortController()
  response.once('close', () => {
    if (!response.writableFinished) controller.abort()
  })
  return controller
}

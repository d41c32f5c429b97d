import fp from 'fastify-plugin'
import { SessionTracker } from '../src/sessions.ts'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionTracker
  }
}

/** Conversations seen within SESSION_WINDOW_MS, for /health and the active-sessions gauge. */
export default fp(async function sessions (fastify) {
  const tracker = new SessionTracker(fastify.config.SESSION_WINDOW_MS)
  fastify.decorate('sessions', tracker)
  fastify.gatewayMetrics.watchSessions(() => tracker.active())
}, { name: 'sessions', dependencies: ['config', 'metrics'] })

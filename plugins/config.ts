import fp from 'fastify-plugin'
import type { Config } from '../src/config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Hands the configuration, already read and checked by src/config.ts, to every plugin. */
export default fp<{ config: Config }>(async function config (fastify, options) {
  fastify.decorate('config', options.config)
}, { name: 'config' })

import Fastify from 'fastify'
import fp from 'fastify-plugin'
import closeWithGrace from 'close-with-grace'
import app from './app.ts'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { serverOptions } from './server-options.ts'

let config: Config
try {
  config = loadConfig(process.env)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(error.message)
  process.exit(1)
}

const server = Fastify(serverOptions(config))
await server.register(fp(app), { config })

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async function shutdown ({ signal, err }) {
  if (err) server.log.error({ err }, 'fatal error, shutting down')
  else server.log.info({ signal }, 'shutting down')
  await server.close()
})

await server.listen({ port: config.PORT, host: config.HOST })

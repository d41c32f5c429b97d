import Fastify from 'fastify'
import fp from 'fastify-plugin'
import closeWithGrace from 'close-with-grace'
import pino from 'pino'
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

// Log lines are gathered into writes of 4 KiB, or flushed every half second, instead of one write per line: one
// write per request cost more CPU than anything else the gateway does. pino flushes what is left on exit.
const logStream = pino.destination({ dest: 1, minLength: 4096, sync: false })
setInterval(() => logStream.flush(), 500).unref()

const server = Fastify(serverOptions(config, logStream))
for (const warning of config.warnings) server.log.warn(warning)
await server.register(fp(app), { config })

// Streams still open when SHUTDOWN_GRACE_MS runs out are ended with an error event (src/pipeline/service.ts); the
// process waits a little longer, for those events to reach their clients, before it exits regardless.
const SHUTDOWN_FLUSH_MS = 1000

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS + SHUTDOWN_FLUSH_MS }, async function shutdown ({ signal, err }) {
  if (err) server.log.error({ err }, 'fatal error, shutting down')
  else server.log.info({ signal }, 'shutting down')
  // close() stops accepting and waits for requests in flight. A keep-alive connection whose stream ends during
  // the wait would otherwise linger until the client drops it, so idle ones are closed as they appear.
  const sweep = setInterval(() => server.server.closeIdleConnections(), 100)
  await server.close()
  clearInterval(sweep)
  server.log.info('stopped')
  logStream.flushSync()
})

// Agents open many connections at once (and nginx one per request): Node's default backlog of 511 drops the rest of a
// burst, each dropped client waiting a second for its retry. The kernel caps this at net.core.somaxconn.
try {
  await server.listen({ port: config.PORT, host: config.HOST, backlog: 4096 })
} catch (error) {
  const problem = listenProblem(error as NodeJS.ErrnoException, config)
  if (!problem) throw error
  // Like an invalid setting: one line on stderr naming what to change, and exit code 1 (the warnings logged so far first).
  try {
    logStream.flushSync()
  } catch {}
  console.error(problem)
  process.exit(1)
}

/** The line for a listen error the operator can fix with PORT or HOST; undefined for any other error. */
function listenProblem (error: NodeJS.ErrnoException, { PORT, HOST }: Config): string | undefined {
  switch (error.code) {
    case 'EADDRINUSE': return `Port ${PORT} is in use on ${HOST}; set PORT to a free port (or stop the other process)`
    case 'EACCES': return `Port ${PORT} on ${HOST} needs privileges this process does not have (ports below 1024 usually do); set PORT to 1024 or above`
    case 'EADDRNOTAVAIL': return `HOST=${HOST} is not an address of this machine; set HOST to one of its addresses`
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return `HOST=${HOST} does not resolve to an address; set HOST to an IP address or a name this machine resolves`
  }
}

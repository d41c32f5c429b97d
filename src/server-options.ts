import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.ts'
import { clientErrorHandler, frameworkErrors } from './http/protocol-errors.ts'

// nginx (or another proxy) may already have named the request; keep its id when it is a plain token, so one id
// follows the request through every log. Anything else is replaced: ids end up in logs and upstream headers.
const SAFE_REQUEST_ID = /^[\w.:@-]{1,128}$/

function requestId (request: IncomingMessage): string {
  const inbound = request.headers['x-request-id']
  return typeof inbound === 'string' && SAFE_REQUEST_ID.test(inbound) ? inbound : randomUUID()
}

/** Fastify's options for the gateway; shared by src/server.ts and the tests so both run the same server. */
export function serverOptions (config: Config, logStream?: DestinationStream): FastifyServerOptions {
  return {
    logger: {
      level: config.LOG_LEVEL,
      ...(logStream ? { stream: logStream } : {}),
      // Headers are not logged by default; should anyone add them, credentials stay out.
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'headers.authorization'], censor: '[redacted]' }
    },
    // One line per request, written by plugins/request-tracking.ts, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestId,
    bodyLimit: config.BODY_LIMIT,
    trustProxy: config.TRUST_PROXY,
    return503OnClosing: true,
    // Receiving a request may take a while for a 10 MiB agent prompt; answers (streams) have no server deadline.
    requestTimeout: 120_000,
    // Longer than the idle timeout of the proxies that keep connections to us open (nginx's keepalive_timeout and
    // most load balancers: 60 s), so a proxy never reuses a socket we are closing.
    keepAliveTimeout: 72_000,
    clientErrorHandler,
    frameworkErrors,
    // Node refuses a request without Host with an empty body; src/http/protocol-errors.ts refuses it in the envelope.
    ...({ http: { requireHostHeader: false } } as object),
    ajv: {
      // OpenAI does not coerce types; `"temperature": "1"` is a 400 there and must be one here.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, useDefaults: false, verbose: true }
    }
  }
}

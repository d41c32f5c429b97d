import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import type { Dispatcher } from 'undici'

// The floor: the least a Node.js proxy can do. node:http in, one undici Pool out, no parsing: the request body
// is piped up and the response body piped back; status, content-type (and content-length when the upstream
// sent one) are copied. Started by bench/run.ts over IPC, or alone:
//   BARE_PROXY_UPSTREAM=http://127.0.0.1:8787 BARE_PROXY_PORT=3001 node bench/bare-proxy.ts
// BARE_PROXY_CONNECTIONS caps the upstream connections like the gateway's UPSTREAM_CONNECTIONS: 0 (the default,
// as the gateway's) for no cap, one connection per request in flight; 1..65536 a cap, beyond which requests
// wait for a free connection.

const upstream = process.env.BARE_PROXY_UPSTREAM ?? 'http://127.0.0.1:8787'
const port = Number(process.env.BARE_PROXY_PORT ?? 0)
const connections = Number(process.env.BARE_PROXY_CONNECTIONS ?? 0)
if (!Number.isInteger(connections) || connections < 0 || connections > 65_536) {
  console.error(`BARE_PROXY_CONNECTIONS: expected an integer from 0 (no limit) to 65536, got ${process.env.BARE_PROXY_CONNECTIONS}`)
  process.exit(2)
}

// undici: `connections: null` is no cap.
const pool = new Pool(upstream, { connections: connections === 0 ? null : connections, keepAliveTimeout: 30_000 })

function handle (req: IncomingMessage, res: ServerResponse): void {
  const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' }
  const length = req.headers['content-length']
  if (length !== undefined) headers['content-length'] = length
  const method = (req.method ?? 'GET') as Dispatcher.HttpMethod
  const hasBody = method !== 'GET' && method !== 'HEAD'
  pool.stream(
    { method, path: req.url ?? '/', headers, body: hasBody ? req : undefined },
    ({ statusCode, headers: upstreamHeaders }) => {
      const out: Record<string, string> = {}
      const type = upstreamHeaders['content-type']
      if (typeof type === 'string') out['content-type'] = type
      const size = upstreamHeaders['content-length']
      if (typeof size === 'string') out['content-length'] = size
      res.writeHead(statusCode, out)
      // From here undici writes each upstream chunk into `res` as it arrives (with backpressure), and a
      // response closed early (the client went away) aborts the upstream request.
      return res
    },
    (error) => {
      if (error === null) return
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' })
        res.end('bad gateway')
      } else {
        res.destroy()
      }
    }
  )
}

const server = createServer({ keepAliveTimeout: 72_000 }, handle)
// The same listen backlog as the gateway (src/server.ts): a burst of new connections is not partly dropped.
server.listen(port, '127.0.0.1', 4096)
await once(server, 'listening')
const bound = (server.address() as AddressInfo).port

async function close () {
  server.close()
  server.closeAllConnections()
  await pool.destroy().catch(() => {})
  process.exit(0)
}

process.on('disconnect', close)
process.on('SIGTERM', close)
process.on('SIGINT', close)
if (process.send) process.send({ port: bound })
else console.log(`bare proxy listening at http://127.0.0.1:${bound} -> ${upstream}`)

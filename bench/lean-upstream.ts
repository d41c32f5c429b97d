import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

// The benchmark's own upstream: as little CPU per request as node:http allows, so the proxy in front of it is what
// the benchmark measures (the test simulator keeps records and plans every answer, and costs more than the floor).
// POST /v1/chat/completions: drains the body, finds `"stream":true` in its bytes (no JSON.parse), and answers a
// fixed chat completion, or an SSE stream of BENCH_UPSTREAM_CHUNKS content chunks (after a role chunk), a finish
// chunk, a usage chunk and [DONE], BENCH_UPSTREAM_INTERVAL_MS apart (0: all in the same tick, one write each).
// GET /v1/models: a fixed list. Started by bench/run.ts over IPC (it reports { port }), or alone:
//   BENCH_UPSTREAM_PORT=8787 node bench/lean-upstream.ts

const num = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback)
  return Number.isFinite(value) && value >= 0 ? value : fallback
}
const chunks = Math.max(1, Math.floor(num('BENCH_UPSTREAM_CHUNKS', 20)))
const intervalMs = num('BENCH_UPSTREAM_INTERVAL_MS', 0)

const base = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764500000,"model":"qwen-plus"'
const frame = (rest: string) => Buffer.from(`data: ${base},${rest}}\n\n`)
const delta = (d: string, finish: string) => frame(`"usage":null,"choices":[{"index":0,"delta":${d},"logprobs":null,"finish_reason":${finish}}]`)
const FRAMES: Buffer[] = [delta('{"role":"assistant","content":""}', 'null')]
for (let i = 0; i < chunks; i++) FRAMES.push(delta(`{"content":"tok${i % 10}${i < chunks - 1 ? ' ' : ''}"}`, 'null'))
FRAMES.push(delta('{"content":""}', '"stop"'))
FRAMES.push(frame(`"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":${chunks},"total_tokens":${12 + chunks},"prompt_tokens_details":{"cached_tokens":0}}`))
FRAMES.push(Buffer.from('data: [DONE]\n\n'))
const JSON_ANSWER = Buffer.from(`{"id":"chatcmpl-bench","object":"chat.completion","created":1764500000,"model":"qwen-plus","choices":[{"index":0,"finish_reason":"stop","logprobs":null,"message":{"role":"assistant","content":"${Array.from({ length: chunks }, (_, i) => `tok${i % 10}`).join(' ')}"}}],"usage":{"prompt_tokens":12,"completion_tokens":${chunks},"total_tokens":${12 + chunks},"prompt_tokens_details":{"cached_tokens":0}}}`)
const MODELS = Buffer.from(JSON.stringify({ object: 'list', data: ['qwen3-max', 'qwen-plus', 'qwen-flash', 'qwen-turbo', 'qwen3-coder-plus', 'qwen3-coder-flash', 'qwq-plus'].map(id => ({ id, object: 'model', created: 1752741600, owned_by: 'system' })) }))
const STREAM_KEY = [Buffer.from('"stream":true'), Buffer.from('"stream": true')]

function send (res: ServerResponse, status: number, type: string, body: Buffer): void {
  res.writeHead(status, { 'content-type': type, 'content-length': body.length })
  res.end(body)
}

function stream (res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream;charset=UTF-8', 'cache-control': 'no-cache' })
  if (intervalMs === 0) {
    for (let i = 0; i < FRAMES.length - 1; i++) res.write(FRAMES[i])
    res.end(FRAMES[FRAMES.length - 1])
    return
  }
  let i = 0
  const next = () => {
    if (res.destroyed) return
    if (i === FRAMES.length - 1) return res.end(FRAMES[i])
    res.write(FRAMES[i++])
    setTimeout(next, intervalMs)
  }
  next()
}

function handle (req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') {
    req.resume()
    if (req.url === '/v1/models') send(res, 200, 'application/json', MODELS)
    else send(res, 404, 'application/json', Buffer.from('{"error":{"message":"not found"}}'))
    return
  }
  const parts: Buffer[] = []
  req.on('data', (chunk: Buffer) => parts.push(chunk))
  req.on('end', () => {
    if (req.url !== '/v1/chat/completions') return send(res, 404, 'application/json', Buffer.from('{"error":{"message":"not found"}}'))
    const body = parts.length === 1 ? parts[0] : Buffer.concat(parts)
    if (body.indexOf(STREAM_KEY[0]) >= 0 || body.indexOf(STREAM_KEY[1]) >= 0) stream(res)
    else send(res, 200, 'application/json', JSON_ANSWER)
  })
}

const server = createServer({ keepAliveTimeout: 72_000 }, handle)
server.listen(num('BENCH_UPSTREAM_PORT', 0), '127.0.0.1', 4096)
await once(server, 'listening')
const port = (server.address() as AddressInfo).port

function close () {
  server.close()
  server.closeAllConnections()
  process.exit(0)
}
process.on('disconnect', close)
process.on('SIGTERM', close)
process.on('SIGINT', close)
if (process.send) process.send({ port })
else console.log(`lean upstream listening at http://127.0.0.1:${port}/v1 (${chunks} chunks per stream, ${intervalMs} ms apart)`)

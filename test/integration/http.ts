import { request as httpRequest, createServer, Agent, type IncomingHttpHeaders } from 'node:http'
import { createConnection } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Teardown } from './servers.ts'
import { forEachSseBlock } from '../helper.ts'

// Small HTTP tools for the integration tests: raw requests (exact paths, a chosen source address), an SSE reader
// that keeps comments, and a stub upstream that records what nginx sends.

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * One request with node:http: the path goes out exactly as given (fetch would normalise `//metrics` or
 * `/v1/../metrics`), from localAddress when set (another loopback address, such as 127.0.0.2).
 */
export function rawRequest (origin: string, path: string, options: { method?: string, headers?: Record<string, string>, body?: string | Buffer, localAddress?: string, agent?: Agent } = {}): Promise<RawResponse> {
  const url = new URL(origin)
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: options.method ?? 'GET',
      path,
      headers: options.headers,
      localAddress: options.localAddress,
      agent: options.agent ?? false,
      timeout: 10_000
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.once('error', reject)
    })
    req.once('timeout', () => req.destroy(new Error(`${path}: no answer within 10 s`)))
    req.once('error', reject)
    req.end(options.body)
  })
}

/** Whether this machine lets a socket use another loopback address as its source (Linux: 127.0.0.0/8 on lo). */
export function canUseSourceAddress (address: string, port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = createConnection({ host: '127.0.0.1', port, localAddress: address })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

export interface SseRead {
  status: number
  /** data: payloads with their arrival time (ms since sentAt). */
  events: Array<{ data: string, at: number }>
  /** SSE comment lines (heartbeats) with their arrival time. */
  comments: Array<{ text: string, at: number }>
  /** Set when the body ended abnormally (connection cut). */
  error?: Error
}

/** Reads a fetch response as SSE, keeping comments and noting when each block arrived; never throws. */
export async function readSse (response: Response, sentAt: number): Promise<SseRead> {
  const read: SseRead = { status: response.status, events: [], comments: [] }
  try {
    await forEachSseBlock(response, block => {
      const at = performance.now() - sentAt
      const data: string[] = []
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) read.comments.push({ text: line, at })
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
      }
      if (data.length > 0) read.events.push({ data: data.join('\n'), at })
    })
  } catch (error) {
    read.error = error as Error
  }
  return read
}

export interface RecordedCall {
  method: string
  url: string
  httpVersion: string
  headers: IncomingHttpHeaders
  remotePort: number
  bodyBytes: number
}

/** A stub upstream on 127.0.0.1 that answers {"ok":true} and records every request. */
export async function startRecorder (t: Teardown): Promise<{ origin: string, calls: RecordedCall[] }> {
  const calls: RecordedCall[] = []
  const server = createServer((req, res) => {
    let bodyBytes = 0
    req.on('data', (chunk: Buffer) => { bodyBytes += chunk.length })
    req.once('end', () => {
      calls.push({ method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, headers: req.headers, remotePort: req.socket.remotePort ?? 0, bodyBytes })
      res.setHeader('content-type', 'application/json')
      res.end('{"ok":true}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise(resolve => {
    server.closeAllConnections()
    server.close(resolve)
  }))
  const { port } = server.address() as AddressInfo
  return { origin: `http://127.0.0.1:${port}`, calls }
}

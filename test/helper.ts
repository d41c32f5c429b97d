import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { AddressInfo } from 'node:net'
import app from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import { serverOptions } from '../src/server-options.ts'
import { startSimulator, type Simulator, type SimulatorOptions } from './simulator/index.ts'

// tap's Test type, reduced to what the helpers need so they work from any test file.
interface Teardown {
  after (fn: () => unknown): void
}

export type Env = Record<string, string | undefined>

/**
 * The gateway app, ready for app.inject(); closed when the test ends. `beforeReady` may add hooks of the test's own
 * (to watch requests as the routes see them) while they can still be added.
 */
export async function build (t: Teardown, env: Env = {}, beforeReady?: (server: FastifyInstance) => void): Promise<FastifyInstance> {
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env })
  const server = Fastify(serverOptions(config))
  beforeReady?.(server)
  await server.register(fp(app), { config })
  await server.ready()
  t.after(() => server.close())
  return server
}

export interface Stack {
  sim: Simulator
  gateway: FastifyInstance
  /** The gateway's base URL including /v1, for clients. */
  baseURL: string
  origin: string
}

/** A simulator upstream and a gateway listening on loopback ports in front of it. */
export async function startStack (t: Teardown, options: { sim?: SimulatorOptions, env?: Env } = {}): Promise<Stack> {
  const sim = await startSimulator(options.sim)
  t.after(() => sim.close())
  const gateway = await build(t, { DASHSCOPE_BASE_URL: sim.url, ...options.env })
  await gateway.listen({ port: 0, host: '127.0.0.1' })
  const { port } = gateway.server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`
  return { sim, gateway, baseURL: `${origin}/v1`, origin }
}

export async function postJson (url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
}

export interface SseEvent {
  event?: string
  data: string
  /** Milliseconds since the request was sent, when the event arrived. */
  at: number
}

/** Calls `onBlock` with each SSE block (the text between blank lines) of a fetch response, as it arrives. */
export async function forEachSseBlock (response: Response, onBlock: (block: string) => void): Promise<void> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      onBlock(buffer.slice(0, end))
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '')
    }
  }
}

/** Reads a fetch response body as SSE events, noting when each one arrived. */
export async function readEvents (response: Response, sentAt = performance.now()): Promise<SseEvent[]> {
  const events: SseEvent[] = []
  await forEachSseBlock(response, block => {
    const event: SseEvent = { data: '', at: performance.now() - sentAt }
    const data: string[] = []
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
      else if (line.startsWith('event:')) event.event = line.slice(6).trim()
    }
    if (data.length > 0 || event.event) {
      event.data = data.join('\n')
      events.push(event)
    }
  })
  return events
}

/** The JSON payloads of the data events, [DONE] left out. */
export const payloads = (events: SseEvent[]) =>
  events.filter(event => event.data !== '[DONE]').map(event => JSON.parse(event.data))

export const user = (content: string) => [{ role: 'user', content }]

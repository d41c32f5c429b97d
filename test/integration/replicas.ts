import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { postJson } from '../helper.ts'
import { spawnGateway, type GatewayProcess } from '../process-helper.ts'
import { answersPing, freePort, launch, tempDir, waitUntil, type Managed, type Teardown } from './servers.ts'

// Several gateway processes as one deployment on one machine: each on its own loopback address and one shared port
// (as containers behind one DNS name), a Redis that can be stopped and started again on the same port, and a load
// generator whose every request carries its own id, so nginx's access log tells which replica served it.

export const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export interface RestartableRedis {
  url: string
  port: number
  running (): boolean
  /** SIGTERM, and resolves once the process is gone. */
  stop (): Promise<void>
  /** A fresh, empty redis-server on the same port (nothing is persisted, as in compose); resolves once it answers PING. */
  start (): Promise<void>
}

/** redis-server on a free loopback port that the test can stop and start again; stopped when the test ends. */
export async function startRestartableRedis (t: Teardown): Promise<RestartableRedis> {
  const dir = await tempDir(t, 'redis')
  const port = await freePort()
  let server: Managed | null = null
  const start = async () => {
    server = await launch(t, 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes',
      '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'
    ], { cwd: dir })
    await waitUntil('redis-server', server, () => answersPing(port), 10_000)
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    running: () => server !== null && !server.exited(),
    async stop () {
      await server?.stop()
      server = null
    },
    start
  }
}

export interface Replica {
  host: string
  origin: string
  process: GatewayProcess
  /** The replica's own /health, operator view. */
  health (): Promise<any>
  alive (): boolean
}

/** One gateway per address, all on `port`, ready once /health/ready answers 200. */
export async function startReplicas (t: Teardown, addresses: string[], port: number, env: Record<string, string>, operatorKey: string): Promise<Replica[]> {
  return Promise.all(addresses.map(async host => {
    const gateway = await spawnGateway(t, { ...env, HOST: host, PORT: String(port) }, { readyPath: '/health/ready', timeoutMs: 30_000 })
    return {
      host,
      origin: gateway.origin,
      process: gateway,
      async health () {
        const res = await fetch(`${gateway.origin}/health`, { headers: { authorization: `Bearer ${operatorKey}` } })
        return res.json()
      },
      alive: () => gateway.child.exitCode === null && gateway.child.signalCode === null
    }
  }))
}

/** A GATEWAY_CONFIG file for the test, in a temporary folder. */
export async function writeGatewayConfig (t: Teardown, config: object): Promise<string> {
  const dir = await tempDir(t, 'replicas-config')
  const file = join(dir, 'gateway.json')
  await writeFile(file, JSON.stringify(config))
  return file
}

export interface Sent {
  id: string
  kind: string
  startedAt: number
  endedAt: number
  status: number
  /** A network error, or a stream that ended without [DONE]. */
  error?: string
  /** The body, for a JSON answer. */
  text?: string
  /** x-ratelimit-remaining-tokens, when the answer had it. */
  remainingTokens?: number
}

let sequence = 0
export const requestId = (kind: string) => `${kind}-${process.pid}-${++sequence}`

/**
 * One request with its own x-request-id; never throws. A stream counts as complete only when it ends with [DONE]:
 * a replica killed mid-answer cuts it, which the client sees as an error even though the status was 200.
 */
export async function send (url: string, body: Record<string, unknown>, headers: Record<string, string>, kind: string, id = requestId(kind)): Promise<Sent> {
  const startedAt = performance.now()
  try {
    const res = await postJson(url, body, { ...headers, 'x-request-id': id })
    const text = await res.text()
    const remaining = res.headers.get('x-ratelimit-remaining-tokens')
    const error = body.stream === true && res.status === 200 && !text.trimEnd().endsWith('data: [DONE]') ? 'stream ended without [DONE]' : undefined
    return { id, kind, startedAt, endedAt: performance.now(), status: res.status, ...(error ? { error } : {}), ...(body.stream === true ? {} : { text }), ...(remaining === null ? {} : { remainingTokens: Number(remaining) }) }
  } catch (error) {
    return { id, kind, startedAt, endedAt: performance.now(), status: 0, error: String((error as Error).cause ?? error) }
  }
}

export interface Load {
  results: Sent[]
  /** Stops issuing requests and resolves once every client's last one ended. */
  stop (): Promise<void>
}

/** `clients` loops, each sending `body()` one after the other until stopped: steady load. */
export function steadyLoad (url: string, headers: Record<string, string>, clients: number, body: (i: number) => Record<string, unknown>, kind = 'load'): Load {
  const results: Sent[] = []
  const stopped = new AbortController()
  let n = 0
  const loop = async () => {
    while (!stopped.signal.aborted) results.push(await send(url, body(n++), headers, kind))
  }
  const loops = Array.from({ length: clients }, loop)
  return {
    results,
    async stop () {
      stopped.abort()
      await Promise.all(loops)
    }
  }
}

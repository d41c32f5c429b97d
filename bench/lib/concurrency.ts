import { readFileSync } from 'node:fs'
import { Pool } from 'undici'
import { cpuMicros, rssKb } from './processes.ts'
import type { Request } from './load.ts'
import { summary } from './stats.ts'

export interface Percentiles {
  p50: number
  p99: number
  max: number
}

export interface ConcurrencyRun {
  /** Row name: floor, gateway, gateway-cap256 … */
  target: string
  /** The upstream connection cap the target ran with; 0 for none. */
  upstreamConnections: number
  round: number
  streams: number
  /** Streams that answered 200 and ended with `data: [DONE]`. */
  completed: number
  failed: number
  /** Failures by cause ("status 503", "no [DONE]", "UND_ERR_SOCKET" …). */
  failures: Record<string, number>
  /** From starting the first stream to the end of the last one, seconds. */
  wallSeconds: number
  /** Per stream, from the start of the burst (all start at once), seconds. */
  headers: Percentiles
  firstByte: Percentiles
  completion: Percentiles
  /** Most streams receiving events at the same moment (first byte seen, end not yet): the queue shows here. */
  maxFlowing: number
  /** CPU use of the target and of the simulator during the burst, in cores. */
  targetCores: number
  simulatorCores: number
  /**
   * TcpExt ListenOverflows during the burst (whole host, so other work counts too; NaN when unreadable): each
   * is a handshake the kernel dropped because a listen queue was full, and that client waits for a retry (1 s).
   */
  listenOverflows: number
  /** The target's RSS in MB: just before the burst, its peak during it (sampled every 100 ms), and `settleMs` after it. */
  rss: { before: number, peak: number, after: number }
}

export interface BurstOptions {
  target: string
  upstreamConnections: number
  round: number
  origin: string
  request: Request
  streams: number
  budgetMs: number
  targetPid: number
  simulatorPid: number
  /** How long after the burst the target's RSS is read again (whether the memory was given back). */
  settleMs: number
}

/** The host's TcpExt ListenOverflows counter (/proc/net/netstat); NaN when unreadable. */
export function listenOverflows (): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter(l => l.startsWith('TcpExt:'))
    const names = lines[0]?.split(/\s+/) ?? []
    const values = lines[1]?.split(/\s+/) ?? []
    const i = names.indexOf('ListenOverflows')
    return i > 0 ? Number(values[i]) : NaN
  } catch {
    return NaN
  }
}

const percentiles = (values: number[]): Percentiles => {
  const s = summary(values)
  return { p50: s.p50, p99: s.p99, max: s.max }
}

/**
 * `streams` streamed requests started at once from this process, over a pool without a connection cap (one
 * connection per stream, so the client never queues), each read to its end. Bounded by `budgetMs`.
 */
export async function concurrentStreams (options: BurstOptions): Promise<ConcurrencyRun> {
  const { request, streams, budgetMs } = options
  const pool = new Pool(options.origin, {
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 1000,
    connectTimeout: budgetMs,
    headersTimeout: budgetMs,
    bodyTimeout: budgetMs
  })
  const signal = AbortSignal.timeout(budgetMs)
  const headers: number[] = []
  const firstByte: number[] = []
  const completion: number[] = []
  const failures: Record<string, number> = {}
  const fail = (cause: string) => { failures[cause] = (failures[cause] ?? 0) + 1 }
  let completed = 0
  let flowing = 0
  let maxFlowing = 0
  const mb = () => rssKb(options.targetPid) / 1024
  const rssBefore = mb()
  let rssPeak = rssBefore
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, mb()) }, 100)
  const cpu0 = cpuMicros(options.targetPid)
  const sim0 = cpuMicros(options.simulatorPid)
  const overflows0 = listenOverflows()
  const t0 = performance.now()

  async function one (): Promise<void> {
    let started = false
    try {
      const response = await pool.request({ method: 'POST', path: request.path, headers: request.headers, body: request.body, signal })
      const tHeaders = performance.now()
      let tFirst = NaN
      let tail = ''
      try {
        for await (const chunk of response.body) {
          if (!started) {
            started = true
            tFirst = performance.now()
            if (++flowing > maxFlowing) maxFlowing = flowing
          }
          tail = (tail + (chunk as Buffer).toString('latin1')).slice(-32)
        }
      } finally {
        if (started) flowing--
      }
      const tEnd = performance.now()
      if (response.statusCode !== 200) return fail(`status ${response.statusCode}`)
      if (!tail.endsWith('data: [DONE]\n\n')) return fail('no [DONE]')
      completed++
      headers.push((tHeaders - t0) / 1000)
      firstByte.push((tFirst - t0) / 1000)
      completion.push((tEnd - t0) / 1000)
    } catch (error) {
      const code = (error as { code?: unknown }).code
      fail(signal.aborted ? 'budget exceeded' : typeof code === 'string' ? code : error instanceof Error ? error.name : 'error')
    }
  }

  // All at once: every request is handed to the pool in the same tick, each on a connection of its own.
  const all: Array<Promise<void>> = []
  for (let i = 0; i < streams; i++) all.push(one())
  await Promise.all(all)
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuMicros(options.targetPid) - cpu0
  const sim = cpuMicros(options.simulatorPid) - sim0
  const overflows = listenOverflows() - overflows0
  clearInterval(sampler)
  rssPeak = Math.max(rssPeak, mb())
  await pool.destroy().catch(() => {})
  await new Promise(resolve => setTimeout(resolve, options.settleMs))
  const rssAfter = mb()
  return {
    target: options.target,
    upstreamConnections: options.upstreamConnections,
    round: options.round,
    streams,
    completed,
    failed: streams - completed,
    failures,
    wallSeconds: seconds,
    headers: percentiles(headers),
    firstByte: percentiles(firstByte),
    completion: percentiles(completion),
    maxFlowing,
    targetCores: cpu / 1e6 / seconds,
    simulatorCores: sim / 1e6 / seconds,
    listenOverflows: overflows,
    rss: { before: rssBefore, peak: rssPeak, after: rssAfter }
  }
}

/** One stream alone, straight to the simulator: how long a stream lasts with nothing in the way, seconds. */
export async function oneStreamSeconds (origin: string, request: Request, timeoutMs: number): Promise<number> {
  const pool = new Pool(origin, { connections: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  try {
    const t0 = performance.now()
    const response = await pool.request({ method: 'POST', path: request.path, headers: request.headers, body: request.body, signal: AbortSignal.timeout(timeoutMs) })
    let tail = ''
    for await (const chunk of response.body) tail = (tail + (chunk as Buffer).toString('latin1')).slice(-32)
    if (response.statusCode !== 200 || !tail.endsWith('data: [DONE]\n\n')) throw new Error(`simulator stream: status ${response.statusCode}, ends ${JSON.stringify(tail)}`)
    return (performance.now() - t0) / 1000
  } finally {
    await pool.destroy().catch(() => {})
  }
}

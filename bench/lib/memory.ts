import autocannon from 'autocannon'
import { Pool } from 'undici'
import { setTimeout as sleep } from 'node:timers/promises'
import { rssKb } from './processes.ts'
import type { Target } from './processes.ts'
import type { Request } from './load.ts'
import { mb, slope } from './stats.ts'

export interface BurstResult {
  streams: number
  completed: number
  failed: number
  /** Most streams the gateway reported in flight (GET /health) during the burst. */
  maxInFlight: number
  seconds: number
  rssBeforeMb: number
  rssMaxMb: number
  rssAtEndMb: number
  /** RSS after the streams ended and the gateway sat idle for a few seconds. */
  rssAfterIdleMb: number
}

export interface SoakResult {
  minutes: number
  requests: number
  non2xx: number
  errors: number
  samples: Array<{ atSeconds: number, rssMb: number }>
  /** Idle, just before the soak. */
  beforeMb: number
  startMb: number
  endMb: number
  maxMb: number
  minMb: number
  afterIdleMb: number
  /** Least-squares slope over the whole soak and over its second half, MB per minute. */
  slopeMbPerMin: number
  slopeSecondHalfMbPerMin: number
  /** Mean of the last third of the samples minus mean of the first third, MB. */
  growthMb: number
  grew: boolean
}

async function inFlightStreams (origin: string): Promise<number> {
  try {
    const response = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(2000) })
    const body = await response.json() as { in_flight?: { streams?: number } }
    return body.in_flight?.streams ?? NaN
  } catch {
    return NaN
  }
}

/**
 * `streams` concurrent slow streams through the gateway, opened in batches of 100 (a SYN flood of 1,000 at once
 * would only measure the listen backlog), with the gateway's RSS sampled every 250 ms. Bounded by `budgetMs`.
 */
export async function streamBurst (gateway: Target, request: Request, streams: number, budgetMs: number): Promise<BurstResult> {
  const pool = new Pool(gateway.origin, { connections: streams + 8, pipelining: 1, keepAliveTimeout: 10_000, headersTimeout: budgetMs, bodyTimeout: budgetMs })
  const rssBeforeMb = mb(rssKb(gateway.pid))
  let rssMaxKb = 0
  let maxInFlight = 0
  const state = { running: true }
  const sampler = setInterval(() => { rssMaxKb = Math.max(rssMaxKb, rssKb(gateway.pid) || 0) }, 250)
  const watcher = (async () => {
    for (let i = 0; state.running && i < budgetMs / 500; i++) {
      const n = await inFlightStreams(gateway.origin)
      if (Number.isFinite(n)) maxInFlight = Math.max(maxInFlight, n)
      await sleep(500)
    }
  })()
  const signal = AbortSignal.timeout(budgetMs)
  let completed = 0
  let failed = 0
  const t0 = performance.now()
  async function one (): Promise<void> {
    try {
      const response = await pool.request({ method: 'POST', path: request.path, headers: request.headers, body: request.body, signal })
      let tail = ''
      for await (const chunk of response.body) tail = (tail + (chunk as Buffer).toString('latin1')).slice(-32)
      if (response.statusCode === 200 && tail.endsWith('data: [DONE]\n\n')) completed++
      else failed++
    } catch {
      failed++
    }
  }
  const all: Array<Promise<void>> = []
  for (let i = 0; i < streams; i += 100) {
    for (let j = i; j < Math.min(streams, i + 100); j++) all.push(one())
    await sleep(20)
  }
  await Promise.all(all)
  const seconds = (performance.now() - t0) / 1000
  state.running = false
  clearInterval(sampler)
  await watcher
  const rssAtEndMb = mb(rssKb(gateway.pid))
  await pool.close().catch(() => {})
  await sleep(5000)
  return {
    streams,
    completed,
    failed,
    maxInFlight,
    seconds,
    rssBeforeMb,
    rssMaxMb: mb(Math.max(rssMaxKb, rssKb(gateway.pid) || 0)),
    rssAtEndMb,
    rssAfterIdleMb: mb(rssKb(gateway.pid))
  }
}

/**
 * Steady load for `minutes`: `fastConnections` connections cycling fast streams and JSON answers (many requests,
 * so a per-request leak shows) plus `slowConnections` connections holding slow streams open. RSS every 10 s.
 */
export async function soak (gateway: Target, requests: { fastStream: Request, json: Request, slowStream: Request }, minutes: number, fastConnections: number, slowConnections: number, log: (line: string) => void): Promise<SoakResult> {
  const seconds = Math.max(10, Math.round(minutes * 60))
  const samples: Array<{ atSeconds: number, rssMb: number }> = []
  const t0 = performance.now()
  const sample = () => {
    const rssMb = mb(rssKb(gateway.pid))
    const atSeconds = (performance.now() - t0) / 1000
    samples.push({ atSeconds, rssMb })
    log(`  soak ${atSeconds.toFixed(0).padStart(4)} s  gateway RSS ${rssMb.toFixed(1)} MB`)
  }
  // Samples are taken under load only (every 10 s from the start); idle RSS before and after is reported apart.
  const beforeMb = mb(rssKb(gateway.pid))
  const sampler = setInterval(sample, 10_000)
  const spec = (r: Request) => ({ method: 'POST', path: r.path, headers: r.headers, body: r.body })
  const fast = autocannon({ url: gateway.origin, connections: fastConnections, duration: seconds, timeout: 60, requests: [spec(requests.fastStream), spec(requests.json)] })
  const slow = autocannon({ url: gateway.origin, connections: slowConnections, duration: seconds, timeout: 60, requests: [spec(requests.slowStream)] })
  const [a, b] = await Promise.all([fast, slow])
  clearInterval(sampler)
  await sleep(10_000)
  const afterIdleMb = mb(rssKb(gateway.pid))
  const ys = samples.map(s => s.rssMb)
  const xs = samples.map(s => s.atSeconds / 60)
  const half = Math.floor(samples.length / 2)
  const third = Math.max(1, Math.floor(samples.length / 3))
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length
  const growthMb = mean(ys.slice(-third)) - mean(ys.slice(0, third))
  const startMb = ys[0] ?? NaN
  const slopeSecondHalf = slope(xs.slice(half), ys.slice(half))
  return {
    minutes: seconds / 60,
    requests: a['2xx'] + b['2xx'],
    non2xx: a.non2xx + b.non2xx,
    errors: a.errors + b.errors,
    samples,
    beforeMb,
    startMb,
    endMb: ys[ys.length - 1],
    maxMb: Math.max(...ys),
    minMb: Math.min(...ys),
    afterIdleMb,
    slopeMbPerMin: slope(xs, ys),
    slopeSecondHalfMbPerMin: slopeSecondHalf,
    growthMb,
    // Flat: the last third within 5 MB (or 5 %) of the first third, or no upward trend in the second half.
    grew: growthMb > Math.max(5, startMb * 0.05) && !(slopeSecondHalf <= 0.5)
  }
}

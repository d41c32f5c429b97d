import autocannon from 'autocannon'
import { Client } from 'undici'
import { setTimeout as sleep } from 'node:timers/promises'
import { cpuMicros } from './processes.ts'
import { Samples, summary } from './stats.ts'

/** Small chat JSON and stream; the agent-size body (bench/lib/agent-body.ts) JSON and stream. */
export type WorkloadName = 'json' | 'stream' | 'agent-json' | 'agent-stream'
export const WORKLOAD_NAMES: WorkloadName[] = ['json', 'stream', 'agent-json', 'agent-stream']

export interface Request {
  path: string
  headers: Record<string, string>
  body: string
}

export interface LoadRun {
  target: string
  workload: WorkloadName
  connections: number
  /** Measured wall time of the run, seconds. */
  seconds: number
  responses: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  rps: number
  /** Full response time (for streams: until the last byte), ms, from every response of the run. */
  latency: { p50: number, p90: number, p99: number, mean: number, max: number }
  /** User + system CPU of the target process per completed response, µs. */
  cpuUsPerRequest: number
  /** The same for the upstream behind the target (lean upstream or simulator: the upstream's share of the machine), µs. */
  upstreamCpuUsPerRequest: number
  /** CPU use of the target process over the run, in cores (1.0 = one core busy all the time). */
  targetCores: number
}

export interface LoadOptions {
  target: string
  origin: string
  workload: WorkloadName
  request: Request
  connections: number
  seconds: number
  targetPid: number
  upstreamPid?: number
}

/** One autocannon run; every response's latency is kept (autocannon's own histogram rounds to whole ms). */
export async function runLoad (options: LoadOptions): Promise<LoadRun> {
  const latencies = new Samples()
  let ok = 0
  let non2xx = 0
  const cpu0 = cpuMicros(options.targetPid)
  const up0 = options.upstreamPid === undefined ? NaN : cpuMicros(options.upstreamPid)
  const t0 = performance.now()
  const instance = autocannon({
    url: options.origin,
    connections: options.connections,
    duration: options.seconds,
    pipelining: 1,
    timeout: 30,
    method: 'POST',
    requests: [{ method: 'POST', path: options.request.path, headers: options.request.headers, body: options.request.body }]
  })
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) {
      ok++
      latencies.push(responseTime)
    } else {
      non2xx++
    }
  })
  const result = await instance
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuMicros(options.targetPid) - cpu0
  const up = options.upstreamPid === undefined ? NaN : cpuMicros(options.upstreamPid) - up0
  const responses = ok + non2xx
  const s = summary(latencies)
  return {
    target: options.target,
    workload: options.workload,
    connections: options.connections,
    seconds,
    responses,
    ok,
    non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    rps: ok / seconds,
    latency: { p50: s.p50, p90: s.p90, p99: s.p99, mean: s.mean, max: s.max },
    cpuUsPerRequest: responses > 0 ? cpu / responses : NaN,
    upstreamCpuUsPerRequest: responses > 0 ? up / responses : NaN,
    targetCores: cpu / 1e6 / seconds
  }
}

/** Load without measurement, to warm up a target (JIT, connection pools, caches). */
export async function warmUp (origin: string, request: Request, connections: number, seconds: number): Promise<void> {
  await autocannon({
    url: origin,
    connections,
    duration: seconds,
    timeout: 30,
    method: 'POST',
    requests: [{ method: 'POST', path: request.path, headers: request.headers, body: request.body }]
  })
}

export interface FirstByteResult {
  target: string
  count: number
  failures: number
  /** Send to response headers, ms. */
  headers: { p50: number, p99: number }
  /** Send to the first byte of the body (the first SSE event), ms. */
  firstByte: { p50: number, p99: number, mean: number }
  /** Send to the end of the stream, ms. */
  total: { p50: number, p99: number }
}

/**
 * Time to first streamed byte: `count` sequential streamed requests per target over one keep-alive connection
 * each, the targets taking turns (so drift on a shared machine hits all alike). Bounded by count and time.
 */
export async function firstByteLoop (targets: Array<{ name: string, origin: string }>, request: Request, count: number, budgetMs: number): Promise<FirstByteResult[]> {
  const clients = targets.map(t => new Client(t.origin, { keepAliveTimeout: 60_000, pipelining: 1 }))
  const data = targets.map(() => ({ headers: new Samples(), first: new Samples(), total: new Samples(), failures: 0 }))
  const deadline = performance.now() + budgetMs
  try {
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      for (let t = 0; t < targets.length; t++) {
        const d = data[t]
        try {
          const t0 = performance.now()
          const response = await clients[t].request({ method: 'POST', path: request.path, headers: request.headers, body: request.body })
          const tHeaders = performance.now()
          let tFirst = NaN
          let tail = ''
          for await (const chunk of response.body) {
            if (Number.isNaN(tFirst)) tFirst = performance.now()
            tail = (tail + (chunk as Buffer).toString('latin1')).slice(-32)
          }
          const tEnd = performance.now()
          if (response.statusCode !== 200 || !tail.endsWith('data: [DONE]\n\n')) {
            d.failures++
            continue
          }
          d.headers.push(tHeaders - t0)
          d.first.push(tFirst - t0)
          d.total.push(tEnd - t0)
        } catch {
          d.failures++
          await sleep(10)
        }
      }
    }
  } finally {
    await Promise.all(clients.map(c => c.close().catch(() => {})))
  }
  return targets.map((t, i) => {
    const h = summary(data[i].headers)
    const f = summary(data[i].first)
    const total = summary(data[i].total)
    return {
      target: t.name,
      count: f.count,
      failures: data[i].failures,
      headers: { p50: h.p50, p99: h.p99 },
      firstByte: { p50: f.p50, p99: f.p99, mean: f.mean },
      total: { p50: total.p50, p99: total.p99 }
    }
  })
}

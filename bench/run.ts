import { parseArgs } from 'node:util'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { machine, machineMarkdown } from './lib/machine.ts'
import type { Machine } from './lib/machine.ts'
import { buildGateway, ensureOpenFiles, killAll, REPO_ROOT, rssKb, startBareProxy, startGateway, startLeanUpstream, startSimulatorProcess, usePinning } from './lib/processes.ts'
import type { Target } from './lib/processes.ts'
import { firstByteLoop, runLoad, warmUp, WORKLOAD_NAMES } from './lib/load.ts'
import type { FirstByteResult, LoadRun, Request, WorkloadName } from './lib/load.ts'
import { soak, streamBurst } from './lib/memory.ts'
import type { BurstResult, SoakResult } from './lib/memory.ts'
import { profileMarkdown, summariseProfile } from './lib/profile.ts'
import type { ProfileSummary } from './lib/profile.ts'
import { concurrentStreams, oneStreamSeconds } from './lib/concurrency.ts'
import type { ConcurrencyRun } from './lib/concurrency.ts'
import { affinityOf, applyPinning } from './lib/pinning.ts'
import { fmt, fmtRatio, median, ratio } from './lib/stats.ts'
import { agentBody } from './lib/agent-body.ts'

// `npm run bench` (node bench/run.ts): the gateway against a bare proxy (the floor) and the upstream itself (the
// benchmark's lean upstream, or the test simulator), each in its own process on 127.0.0.1. See bench/README.md.

const HELP = `Usage: node bench/run.ts [options]

Phases (default: --throughput alone; --memory, --profile and --concurrency run only what they name unless --throughput is given too)
  --throughput              load at each --connections for each workload (small chat JSON and stream, agent-size JSON and
                            stream), first streamed byte, idle RSS; gateway vs floor vs the upstream alone
  --memory                  --streams concurrent slow streams through the gateway, RSS during and after, then a soak
  --profile                 the gateway under load with node --cpu-prof; top self-time functions
  --concurrency             --concurrency-streams streams started at once: wall time and per-stream completion through the
                            gateway (defaults), the gateway with UPSTREAM_CONNECTIONS=--concurrency-cap, and the floor (no cap)

Throughput options
  --duration <s>            seconds per measured run (default 10)
  --warmup <s>              warm-up seconds per target and workload (default 3)
  --quick                   smoke check: 2 s runs, 1 s warm-up, 40 first-byte requests, 1-minute soak
  --connections <list>      comma-separated (default 1,64)
  --workloads <list>        comma-separated, of json, stream, agent-json, agent-stream (default all four): small chat
                            JSON and stream, and the ~120 KB agent-size body (Roo Code's shape) JSON and stream
  --upstream <u>            lean (default: bench/lean-upstream.ts, fixed answers, on the load CPU) or simulator (the
                            test simulator, as before); for the throughput and profile phases
  --tokens <n>              streamed content chunks per answer (default 20)
  --interval-ms <ms>        delay between chunks in the upstream (default 0: the proxy path dominates)
  --first-byte-requests <n> sequential streamed requests per target for the first-byte times (default 300)
  --rounds <n>              repeat every run n times, targets in rotating order; medians reported (default 1)

Memory options
  --streams <n>             concurrent slow streams (default 1000)
  --memory-tokens <n>       chunks per slow stream (default 100)
  --memory-interval-ms <ms> delay between them (default 50)
  --bursts <n>              how many times to open the streams (default 2)
  --soak-minutes <m>        steady load afterwards, RSS every 10 s (default 10, at most 120; 0 skips it)

Concurrency options (one stream lasts about --concurrency-tokens × --concurrency-interval-ms; default about 5 s)
  --concurrency-streams <n>       streams started at once (default 1000)
  --concurrency-tokens <n>        chunks per stream (default 100)
  --concurrency-interval-ms <ms>  delay between them (default 50)
  --settle-seconds <s>            concurrency: how long after each burst the target's RSS is read again (default 60)
  --concurrency-cap <n>           UPSTREAM_CONNECTIONS of the capped gateway, to show the queue (default 256, the old
                                  default; 0 leaves that gateway out). Uses --warmup and --rounds.

Profile options
  --profile-workload <w>    stream, json, both (stream and json), agent-json or agent-stream (default stream); uses
                            --duration, --upstream and --connections' largest value
  --profile-floor           also profile the bare proxy under the same load, for comparison

CPU pinning
  --no-pin                  do not pin; by default, with taskset and 2+ CPUs, the target under test (gateway or floor)
                            runs on the first CPU and the simulator and the load generator (this process) on the others

Output
  --out <dir>               results directory (default bench/results): latest.md/.json plus one file per phase
  --log-file <path>         gateway logs to this file instead of /dev/null
  --gateway-node-args=<s>   Node flags for the gateway, space-separated (e.g. --gateway-node-args=--max-semi-space-size=8); none by default,
                            as users run it; shown in the results
  --help
`

const { values: opts } = parseArgs({
  options: {
    throughput: { type: 'boolean', default: false },
    memory: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    quick: { type: 'boolean', default: false },
    connections: { type: 'string', default: '1,64' },
    workloads: { type: 'string', default: WORKLOAD_NAMES.join(',') },
    upstream: { type: 'string', default: 'lean' },
    tokens: { type: 'string', default: '20' },
    'interval-ms': { type: 'string', default: '0' },
    'first-byte-requests': { type: 'string' },
    rounds: { type: 'string', default: '1' },
    streams: { type: 'string', default: '1000' },
    'memory-tokens': { type: 'string', default: '100' },
    'memory-interval-ms': { type: 'string', default: '50' },
    bursts: { type: 'string', default: '2' },
    'soak-minutes': { type: 'string' },
    'profile-workload': { type: 'string', default: 'stream' },
    'profile-floor': { type: 'boolean', default: false },
    concurrency: { type: 'boolean', default: false },
    'concurrency-streams': { type: 'string', default: '1000' },
    'concurrency-tokens': { type: 'string', default: '100' },
    'concurrency-interval-ms': { type: 'string', default: '50' },
    'concurrency-cap': { type: 'string', default: '256' },
    'settle-seconds': { type: 'string', default: '60' },
    pin: { type: 'boolean', default: true },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results') },
    'log-file': { type: 'string' },
    'gateway-node-args': { type: 'string', default: '' },
    help: { type: 'boolean', default: false }
  },
  strict: true,
  allowNegative: true
})

if (opts.help) {
  console.log(HELP)
  process.exit(0)
}

function int (name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  const n = value === undefined ? fallback : Number(value)
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`--${name}: expected a number from ${min} to ${max}, got ${value}`)
    process.exit(2)
  }
  return n
}

const quick = opts.quick
const settings = {
  duration: int('duration', opts.duration, quick ? 2 : 10, 1, 600),
  warmup: int('warmup', opts.warmup, quick ? 1 : 3, 0, 120),
  connections: opts.connections.split(',').map(c => int('connections', c.trim(), 1, 1, 2000)),
  tokens: int('tokens', opts.tokens, 20, 1, 10_000),
  intervalMs: int('interval-ms', opts['interval-ms'], 0, 0, 10_000),
  firstByteRequests: int('first-byte-requests', opts['first-byte-requests'], quick ? 40 : 300, 1, 100_000),
  rounds: int('rounds', opts.rounds, 1, 1, 20),
  streams: int('streams', opts.streams, 1000, 1, 5000),
  memoryTokens: int('memory-tokens', opts['memory-tokens'], 100, 1, 10_000),
  memoryIntervalMs: int('memory-interval-ms', opts['memory-interval-ms'], 50, 0, 10_000),
  bursts: int('bursts', opts.bursts, 2, 1, 20),
  soakMinutes: int('soak-minutes', opts['soak-minutes'], quick ? 1 : 10, 0, 120),
  concurrencyStreams: int('concurrency-streams', opts['concurrency-streams'], 1000, 1, 20_000),
  concurrencyTokens: int('concurrency-tokens', opts['concurrency-tokens'], 100, 1, 10_000),
  concurrencyIntervalMs: int('concurrency-interval-ms', opts['concurrency-interval-ms'], 50, 0, 10_000),
  concurrencyCap: int('concurrency-cap', opts['concurrency-cap'], 256, 0, 65_536),
  settleSeconds: int('settle-seconds', opts['settle-seconds'], 60, 0, 600),
  profileWorkloads: (opts['profile-workload'] === 'both' ? ['stream', 'json'] : [opts['profile-workload']]) as WorkloadName[],
  workloads: opts.workloads.split(',').map(w => w.trim()).filter(Boolean) as WorkloadName[],
  upstream: opts.upstream as 'lean' | 'simulator',
  out: resolve(opts.out),
  logFile: opts['log-file'] === undefined ? undefined : resolve(opts['log-file']),
  gatewayNodeArgs: opts['gateway-node-args'].split(' ').filter(Boolean)
}
if (settings.profileWorkloads.some(w => !WORKLOAD_NAMES.includes(w))) {
  console.error(`--profile-workload: expected both or one of ${WORKLOAD_NAMES.join(', ')}`)
  process.exit(2)
}
if (settings.workloads.length === 0 || settings.workloads.some(w => !WORKLOAD_NAMES.includes(w))) {
  console.error(`--workloads: expected a comma-separated list of ${WORKLOAD_NAMES.join(', ')}`)
  process.exit(2)
}
if (settings.upstream !== 'lean' && settings.upstream !== 'simulator') {
  console.error('--upstream: expected lean or simulator')
  process.exit(2)
}
const phases = {
  throughput: opts.throughput || (!opts.memory && !opts.profile && !opts.concurrency),
  memory: opts.memory,
  profile: opts.profile,
  concurrency: opts.concurrency
}

const log = (line: string) => console.error(line)

// Before any process starts: the runner (the load generator) moves to the load CPUs, and every target will be
// started on a CPU of its own, the upstream (lean upstream or simulator) with the runner (see bench/lib/pinning.ts).
const pinning = applyPinning(opts.pin)
usePinning(pinning)
const pinningNote = pinning.note

// Every target shares one client key, as a user's OpenAI SDK would send it; the floor and the upstream ignore it.
const CLIENT_KEY = 'sk-bench-client-0123456789'
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` }
const PATH = '/v1/chat/completions'
const MESSAGES = [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Write a haiku about gateways' }]
const request = (extra: Record<string, unknown>): Request => ({
  path: PATH,
  headers: HEADERS,
  body: JSON.stringify({ model: 'qwen-plus', messages: MESSAGES, ...extra })
})
// Streams ask for usage themselves, so the gateway forwards the client's bytes unchanged and every target
// relays the very same event stream (without it the gateway adds the field and drops the usage chunk).
// The agent-size body (bench/lib/agent-body.ts, about 120 KB in Roo Code's shape, with native tools) streams the
// same way.
const WORKLOADS: Record<WorkloadName, Request> = {
  json: request({}),
  stream: request({ stream: true, stream_options: { include_usage: true } }),
  'agent-json': { path: PATH, headers: HEADERS, body: agentBody(false) },
  'agent-stream': { path: PATH, headers: HEADERS, body: agentBody(true) }
}
const WORKLOAD_LABELS: Record<WorkloadName, string> = {
  json: 'small chat, JSON',
  stream: `small chat, stream (${settings.tokens} chunks)`,
  'agent-json': `agent-size body (${fmt(Buffer.byteLength(WORKLOADS['agent-json'].body) / 1000)} KB, Roo Code shape), JSON`,
  'agent-stream': 'agent-size body, stream'
}
const isAgent = (w: WorkloadName) => w.startsWith('agent-')

/** The upstream of the throughput and profile phases: the lean upstream (default) or the test simulator. */
async function startUpstream (): Promise<Target> {
  return settings.upstream === 'lean'
    ? await startLeanUpstream('upstream', { chunks: settings.tokens, intervalMs: settings.intervalMs })
    : await startSimulatorProcess('upstream', { tokens: settings.tokens, intervalMs: settings.intervalMs, firstChunkDelayMs: 0 })
}
const upstreamLabel = () => (settings.upstream === 'lean' ? 'lean upstream (bench/lean-upstream.ts)' : 'test simulator (bench/simulator-child.ts)')

// ---- bounded run time: a watchdog kills everything if the plan takes far longer than it should ----

function plannedSeconds (): number {
  let s = 60
  if (phases.throughput) {
    const runs = 3 * settings.workloads.length * settings.connections.length * settings.rounds
    s += runs * (settings.duration + 3) + 3 * settings.workloads.length * (settings.warmup + 2) + 300 + 60
  }
  if (phases.memory) s += settings.bursts * (settings.memoryTokens * settings.memoryIntervalMs / 1000 + 90) + settings.soakMinutes * 60 + 120
  if (phases.profile) s += settings.profileWorkloads.length * 2 * (settings.duration + settings.warmup + 60)
  if (phases.concurrency) {
    const stream = concurrencyStreamEstimate()
    const waves = settings.concurrencyCap > 0 ? Math.ceil(settings.concurrencyStreams / settings.concurrencyCap) : 0
    s += settings.rounds * ((2 + waves) * (stream * 1.5 + 5) + 3 * 5) + 3 * (settings.warmup + 10) + stream + 60
  }
  return s
}
const watchdog = setTimeout(() => {
  log(`bench: still running after ${plannedSeconds() * 2} s (twice the plan); stopping everything`)
  killAll()
  process.exit(3)
}, plannedSeconds() * 2 * 1000)
watchdog.unref()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}
process.once('exit', killAll)

// ---- helpers ----

/** One request through a target, checked; so a broken target fails loudly instead of benchmarking 4xx. */
async function check (name: string, origin: string, workload: WorkloadName): Promise<void> {
  await checkRequest(name, origin, WORKLOADS[workload], workload)
}

async function checkRequest (name: string, origin: string, r: Request, label = 'stream'): Promise<void> {
  const streamed = r.body.includes('"stream":true')
  const response = await fetch(origin + r.path, { method: 'POST', headers: r.headers, body: r.body, signal: AbortSignal.timeout(10_000) })
  const text = await response.text()
  const ok = response.status === 200 && (streamed ? text.endsWith('data: [DONE]\n\n') : text.includes('"chat.completion"'))
  if (!ok) throw new Error(`${name} ${label}: status ${response.status}, body ${text.slice(0, 300)}`)
}

async function checkKeyRequired (gateway: Target): Promise<void> {
  const r = WORKLOADS.json
  const response = await fetch(gateway.origin + r.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: r.body, signal: AbortSignal.timeout(10_000) })
  await response.arrayBuffer()
  if (response.status !== 401) throw new Error(`gateway answered ${response.status} without a client key; expected 401 (GATEWAY_API_KEYS on)`)
}

const ms = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(3) : v.toFixed(1)) : '–')
const signedMs = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms` : '–')

function writeResults (name: string, markdown: string, json: unknown): void {
  mkdirSync(settings.out, { recursive: true })
  writeFileSync(join(settings.out, `${name}.md`), markdown)
  writeFileSync(join(settings.out, `${name}.json`), JSON.stringify(json, null, 2) + '\n')
}

// ---- throughput ----

interface ThroughputResults {
  settings: { duration: number, warmup: number, connections: number[], workloads: WorkloadName[], upstream: string, tokens: number, intervalMs: number, rounds: number, firstByteRequests: number, agentBodyBytes: number }
  /** RSS of each process after startup, before any load (after a second of rest), MB. */
  idleRssMb: Record<string, number>
  runs: LoadRun[]
  /** Medians over the rounds, per workload, connections and target. */
  table: LoadRun[]
  firstByte: FirstByteResult[]
}

const TARGET_NAMES = ['floor', 'gateway', 'upstream'] as const

async function throughput (): Promise<ThroughputResults> {
  log(`upstream: ${upstreamLabel()}, ${settings.tokens} chunks per streamed answer, ${settings.intervalMs} ms apart; workloads ${settings.workloads.join(', ')}`)
  const up = await startUpstream()
  // No upstream connection cap on either side: the gateway's default (UPSTREAM_CONNECTIONS=0), and the floor's.
  const floor = await startBareProxy(up.origin, 0)
  const gateway = await startGateway({ upstreamOrigin: up.origin, apiKey: CLIENT_KEY, nodeArgs: settings.gatewayNodeArgs, logPath: settings.logFile })
  const targets: Record<typeof TARGET_NAMES[number], Target> = { floor, gateway, upstream: up }
  log(`upstream ${up.origin} (pid ${up.pid}, CPUs ${up.cpus}), floor ${floor.origin} (pid ${floor.pid}, CPUs ${floor.cpus}), gateway ${gateway.origin} (pid ${gateway.pid}, CPUs ${gateway.cpus})`)
  try {
    // Idle RSS: after startup (the gateway has answered /health), before any request is sent.
    await sleep(1000)
    const idleRssMb: Record<string, number> = {}
    for (const name of TARGET_NAMES) idleRssMb[name] = rssKb(targets[name].pid) / 1024
    log(`idle RSS after start: ${TARGET_NAMES.map(n => `${n} ${idleRssMb[n].toFixed(1)} MB`).join(', ')}`)
    await checkKeyRequired(gateway)
    for (const name of TARGET_NAMES) {
      for (const workload of settings.workloads) await check(name, targets[name].origin, workload)
    }
    const warmConnections = Math.max(...settings.connections)
    for (const name of TARGET_NAMES) {
      for (const workload of settings.workloads) {
        log(`warm-up ${name} ${workload} ${warmConnections} connections ${settings.warmup} s`)
        if (settings.warmup > 0) await warmUp(targets[name].origin, WORKLOADS[workload], warmConnections, settings.warmup)
      }
    }
    const runs: LoadRun[] = []
    for (let round = 0; round < settings.rounds; round++) {
      for (const workload of settings.workloads) {
        for (const connections of settings.connections) {
          for (let k = 0; k < TARGET_NAMES.length; k++) {
            const name = TARGET_NAMES[(k + round) % TARGET_NAMES.length]
            const target = targets[name]
            await sleep(500)
            const run = await runLoad({
              target: name,
              origin: target.origin,
              workload,
              request: WORKLOADS[workload],
              connections,
              seconds: settings.duration,
              targetPid: target.pid,
              upstreamPid: name === 'upstream' ? undefined : up.pid
            })
            runs.push(run)
            log(`round ${round + 1} ${workload.padEnd(12)} c=${String(connections).padEnd(3)} ${name.padEnd(9)} ${fmt(run.rps).padStart(7)} req/s  p50 ${ms(run.latency.p50)} ms  p99 ${ms(run.latency.p99)} ms  cpu ${fmt(run.cpuUsPerRequest)} µs/req  non-2xx ${run.non2xx} errors ${run.errors}`)
          }
        }
      }
    }
    const streamWorkload: WorkloadName = settings.workloads.includes('stream') || !settings.workloads.includes('agent-stream') ? 'stream' : 'agent-stream'
    log(`first streamed byte (${streamWorkload}): ${settings.firstByteRequests} sequential requests per target, interleaved`)
    const firstByte = await firstByteLoop(TARGET_NAMES.map(n => ({ name: n, origin: targets[n].origin })), WORKLOADS[streamWorkload], settings.firstByteRequests, 300_000)
    const table: LoadRun[] = []
    for (const workload of settings.workloads) {
      for (const connections of settings.connections) {
        for (const name of TARGET_NAMES) {
          const same = runs.filter(r => r.workload === workload && r.connections === connections && r.target === name)
          table.push(medianRun(same))
        }
      }
    }
    return {
      settings: { duration: settings.duration, warmup: settings.warmup, connections: settings.connections, workloads: settings.workloads, upstream: upstreamLabel(), tokens: settings.tokens, intervalMs: settings.intervalMs, rounds: settings.rounds, firstByteRequests: settings.firstByteRequests, agentBodyBytes: Buffer.byteLength(WORKLOADS['agent-json'].body) },
      idleRssMb,
      runs,
      table,
      firstByte
    }
  } finally {
    await gateway.stop()
    await floor.stop()
    await up.stop()
  }
}

function medianRun (runs: LoadRun[]): LoadRun {
  if (runs.length === 1) return runs[0]
  const m = (pick: (r: LoadRun) => number) => median(runs.map(pick))
  return {
    ...runs[0],
    seconds: m(r => r.seconds),
    responses: m(r => r.responses),
    ok: m(r => r.ok),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    timeouts: runs.reduce((s, r) => s + r.timeouts, 0),
    rps: m(r => r.rps),
    latency: { p50: m(r => r.latency.p50), p90: m(r => r.latency.p90), p99: m(r => r.latency.p99), mean: m(r => r.latency.mean), max: m(r => r.latency.max) },
    cpuUsPerRequest: m(r => r.cpuUsPerRequest),
    upstreamCpuUsPerRequest: m(r => r.upstreamCpuUsPerRequest),
    targetCores: m(r => r.targetCores)
  }
}

interface Check {
  target: string
  measured: string
  limit: string
  pass: boolean | null
}

// Issue 12's targets: ratios to the floor in the same run.
const LIMITS = {
  small: { rps: 0.8, cpu: 1.5, addedP50Ms: 0.3 },
  agent: { rps: 0.7, cpu: 1.8, addedP50Ms: 0.8 },
  idleRssMb: 80
}

function throughputChecks (t: ThroughputResults): Check[] {
  const find = (workload: WorkloadName, connections: number, target: string) => t.table.find(r => r.workload === workload && r.connections === connections && r.target === target)
  const checks: Check[] = []
  const high = Math.max(...t.settings.connections)
  const low = Math.min(...t.settings.connections)
  for (const workload of t.settings.workloads) {
    const limit = isAgent(workload) ? LIMITS.agent : LIMITS.small
    const g = find(workload, high, 'gateway')
    const f = find(workload, high, 'floor')
    if (g && f) {
      const r = ratio(g.rps, f.rps)
      checks.push({ target: `Throughput, ${WORKLOAD_LABELS[workload]}, ${high} connections`, measured: `${fmtRatio(r)} floor (${fmt(g.rps)} vs ${fmt(f.rps)} req/s)`, limit: `≥ ${limit.rps.toFixed(2)}×`, pass: r >= limit.rps })
      const c = ratio(g.cpuUsPerRequest, f.cpuUsPerRequest)
      checks.push({ target: `CPU per request, ${WORKLOAD_LABELS[workload]}, ${high} connections`, measured: `${fmtRatio(c)} floor (${fmt(g.cpuUsPerRequest)} vs ${fmt(f.cpuUsPerRequest)} µs)`, limit: `≤ ${limit.cpu.toFixed(2)}×`, pass: c <= limit.cpu })
    }
  }
  for (const workload of t.settings.workloads) {
    const limit = isAgent(workload) ? LIMITS.agent : LIMITS.small
    const g = find(workload, low, 'gateway')
    const f = find(workload, low, 'floor')
    if (g && f) {
      const added = g.latency.p50 - f.latency.p50
      checks.push({ target: `Added latency, ${WORKLOAD_LABELS[workload]}, ${low} connection, p50`, measured: `${signedMs(added)} (${ms(g.latency.p50)} vs ${ms(f.latency.p50)} ms)`, limit: `≤ ${limit.addedP50Ms} ms`, pass: added <= limit.addedP50Ms })
    }
  }
  const fb = (name: string) => t.firstByte.find(r => r.target === name)
  const g = fb('gateway')
  const s = fb('upstream')
  if (g && s) {
    const added = g.firstByte.p50 - s.firstByte.p50
    checks.push({ target: 'First streamed byte after the upstream\'s, p50', measured: `${signedMs(added)} (${ms(g.firstByte.p50)} vs ${ms(s.firstByte.p50)} ms)`, limit: '≤ 1 ms', pass: added <= 1 })
  }
  const rss = t.idleRssMb.gateway
  checks.push({ target: 'Idle RSS of the gateway after startup', measured: `${rss.toFixed(1)} MB (floor ${t.idleRssMb.floor.toFixed(1)} MB)`, limit: `≤ ${LIMITS.idleRssMb} MB`, pass: rss <= LIMITS.idleRssMb })
  return checks
}

function checksMarkdown (checks: Check[], heading = 'Target (issue 12)'): string {
  const lines = [`| ${heading} | Measured | Limit | Met |`, '|---|---|---|---|']
  for (const c of checks) lines.push(`| ${c.target} | ${c.measured} | ${c.limit} | ${c.pass === null ? '–' : c.pass ? 'yes' : '**no**'} |`)
  return lines.join('\n')
}

/** Issue 12's table: per workload, floor and gateway at the most connections, p50 at the fewest; ratios to the floor. */
function summaryMarkdown (t: ThroughputResults): string {
  const high = Math.max(...t.settings.connections)
  const low = Math.min(...t.settings.connections)
  const find = (workload: WorkloadName, connections: number, target: string) => t.table.find(r => r.workload === workload && r.connections === connections && r.target === target)
  const lines = [
    `| workload | floor req/s | gateway req/s | × floor | CPU µs/req floor → gateway | × floor | p50 ms at ${low} conn. floor → gateway | added p50 |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const w of t.settings.workloads) {
    const f = find(w, high, 'floor')
    const g = find(w, high, 'gateway')
    const f1 = find(w, low, 'floor')
    const g1 = find(w, low, 'gateway')
    if (!f || !g) continue
    lines.push(`| ${WORKLOAD_LABELS[w]} | ${fmt(f.rps)} | ${fmt(g.rps)} | **${fmtRatio(ratio(g.rps, f.rps))}** | ${fmt(f.cpuUsPerRequest)} → ${fmt(g.cpuUsPerRequest)} | **${fmtRatio(ratio(g.cpuUsPerRequest, f.cpuUsPerRequest))}** | ${f1 && g1 ? `${ms(f1.latency.p50)} → ${ms(g1.latency.p50)}` : '–'} | ${f1 && g1 ? signedMs(g1.latency.p50 - f1.latency.p50) : '–'} |`)
  }
  lines.push('', `Idle RSS after startup, before any request: gateway **${t.idleRssMb.gateway.toFixed(1)} MB**, floor ${t.idleRssMb.floor.toFixed(1)} MB (× floor ${fmtRatio(ratio(t.idleRssMb.gateway, t.idleRssMb.floor))}), upstream ${t.idleRssMb.upstream.toFixed(1)} MB.`)
  return lines.join('\n')
}

function throughputMarkdown (t: ThroughputResults): string {
  const lines: string[] = []
  const high = Math.max(...t.settings.connections)
  lines.push(`Upstream: ${t.settings.upstream}, ${t.settings.tokens} content chunks per streamed answer, ${t.settings.intervalMs} ms apart. Agent-size body: ${fmt(t.settings.agentBodyBytes)} bytes (bench/lib/agent-body.ts). ${t.settings.duration} s per run after ${t.settings.warmup} s warm-up per target and workload${t.settings.rounds > 1 ? `; medians of ${t.settings.rounds} rounds` : ''}. Throughput and CPU at ${high} connections; ratios to the floor in this run.`, '')
  lines.push(summaryMarkdown(t), '')
  lines.push('All runs. Latency is the full response time (streams: to the last byte). CPU is user + system time of the target process from /proc per completed request; for the upstream row (the upstream called directly) it is the upstream\'s own. "upstream µs/req" is the upstream\'s CPU behind the target. "cores" is the target\'s CPU use during the run.', '')
  lines.push('| workload | conns | target | req/s | ×floor | p50 ms | ×floor | p99 ms | ×floor | CPU µs/req | ×floor | cores | upstream µs/req | non-2xx / errors |')
  lines.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of t.table) {
    const f = t.table.find(x => x.workload === r.workload && x.connections === r.connections && x.target === 'floor')!
    lines.push(`| ${r.workload} | ${r.connections} | ${r.target} | ${fmt(r.rps)} | ${fmtRatio(ratio(r.rps, f.rps))} | ${ms(r.latency.p50)} | ${fmtRatio(ratio(r.latency.p50, f.latency.p50))} | ${ms(r.latency.p99)} | ${fmtRatio(ratio(r.latency.p99, f.latency.p99))} | ${fmt(r.cpuUsPerRequest)} | ${fmtRatio(ratio(r.cpuUsPerRequest, f.cpuUsPerRequest))} | ${r.targetCores.toFixed(2)} | ${fmt(r.upstreamCpuUsPerRequest)} | ${r.non2xx} / ${r.errors} |`)
  }
  lines.push('', `First streamed byte: ${t.settings.firstByteRequests} sequential streamed requests per target over one keep-alive connection, targets taking turns; time from sending the request to the response headers and to the first body byte.`, '')
  lines.push('| target | requests | headers p50 ms | first byte p50 ms | first byte p99 ms | Δ p50 vs floor | Δ p50 vs upstream | whole stream p50 ms | failures |')
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  const floorFb = t.firstByte.find(r => r.target === 'floor')
  const upFb = t.firstByte.find(r => r.target === 'upstream')
  for (const r of t.firstByte) {
    lines.push(`| ${r.target} | ${r.count} | ${ms(r.headers.p50)} | ${ms(r.firstByte.p50)} | ${ms(r.firstByte.p99)} | ${signedMs(r.firstByte.p50 - (floorFb?.firstByte.p50 ?? NaN))} | ${signedMs(r.firstByte.p50 - (upFb?.firstByte.p50 ?? NaN))} | ${ms(r.total.p50)} | ${r.failures} |`)
  }
  lines.push('')
  return lines.join('\n')
}

// ---- memory ----

interface MemoryResults {
  /** upstreamConnections: the gateway's UPSTREAM_CONNECTIONS, 0 for its default (no cap). */
  settings: { streams: number, tokens: number, intervalMs: number, bursts: number, soakMinutes: number, upstreamConnections: number, soakFastConnections: number, soakSlowConnections: number }
  idleAfterStartMb: number
  bursts: BurstResult[]
  soak: SoakResult | null
}

async function memoryRun (): Promise<MemoryResults> {
  // The gateway's default, no cap on upstream connections: every stream really in flight upstream too.
  const upstreamConnections = 0
  log(ensureOpenFiles(2 * Math.max(settings.streams, 200 + 32) + 512))
  const sim = await startSimulatorProcess('simulator (slow)', { tokens: settings.memoryTokens, intervalMs: settings.memoryIntervalMs, firstChunkDelayMs: 0 })
  const gateway = await startGateway({ upstreamOrigin: sim.origin, apiKey: CLIENT_KEY, nodeArgs: settings.gatewayNodeArgs, logPath: settings.logFile })
  log(`memory: gateway ${gateway.origin} (pid ${gateway.pid}, CPUs ${gateway.cpus}) at its defaults (no upstream connection cap); simulator ${settings.memoryTokens} chunks ${settings.memoryIntervalMs} ms apart (CPUs ${sim.cpus})`)
  const slowStream = WORKLOADS.stream
  const fastStream = request({ stream: true, stream_options: { include_usage: true }, sim: { intervalMs: 0 } })
  const json = WORKLOADS.json
  const soakFast = 32
  const soakSlow = 200
  try {
    await checkKeyRequired(gateway)
    await check('gateway', gateway.origin, 'json')
    const idleAfterStartMb = rssKb(gateway.pid) / 1024
    log(`memory: idle RSS after start ${idleAfterStartMb.toFixed(1)} MB; warming up`)
    await warmUp(gateway.origin, fastStream, 32, Math.max(1, settings.warmup))
    await warmUp(gateway.origin, json, 32, Math.max(1, settings.warmup))
    await sleep(3000)
    const bursts: BurstResult[] = []
    const budgetMs = settings.memoryTokens * settings.memoryIntervalMs + 120_000
    for (let i = 0; i < settings.bursts; i++) {
      log(`memory: burst ${i + 1}/${settings.bursts}: ${settings.streams} concurrent streams`)
      const b = await streamBurst(gateway, slowStream, settings.streams, budgetMs)
      bursts.push(b)
      log(`  completed ${b.completed}, failed ${b.failed}, max in flight ${b.maxInFlight}, RSS before ${b.rssBeforeMb.toFixed(1)} max ${b.rssMaxMb.toFixed(1)} end ${b.rssAtEndMb.toFixed(1)} idle ${b.rssAfterIdleMb.toFixed(1)} MB`)
    }
    let soakResult: SoakResult | null = null
    if (settings.soakMinutes > 0) {
      log(`memory: soak ${settings.soakMinutes} min: ${soakFast} connections of fast streams and JSON, ${soakSlow} connections of slow streams`)
      soakResult = await soak(gateway, { fastStream, json, slowStream }, settings.soakMinutes, soakFast, soakSlow, log)
    }
    return {
      settings: { streams: settings.streams, tokens: settings.memoryTokens, intervalMs: settings.memoryIntervalMs, bursts: settings.bursts, soakMinutes: settings.soakMinutes, upstreamConnections, soakFastConnections: soakFast, soakSlowConnections: soakSlow },
      idleAfterStartMb,
      bursts,
      soak: soakResult
    }
  } finally {
    await gateway.stop()
    await sim.stop()
  }
}

function memoryChecks (m: MemoryResults): Check[] {
  const max = Math.max(...m.bursts.map(b => b.rssMaxMb))
  const allOpen = m.bursts.every(b => b.completed === m.settings.streams)
  const checks: Check[] = [{
    target: `${fmt(m.settings.streams)} concurrent streams, gateway RSS`,
    measured: `max ${max.toFixed(1)} MB${allOpen ? '' : ' (some streams failed)'}`,
    limit: '≤ 200 MB',
    pass: max <= 200 && allOpen
  }]
  if (m.soak) {
    checks.push({
      target: `RSS flat after the soak (${m.soak.minutes.toFixed(1)} min)`,
      measured: `${m.soak.startMb.toFixed(1)} → ${m.soak.endMb.toFixed(1)} MB (max ${m.soak.maxMb.toFixed(1)}), ${m.soak.slopeMbPerMin >= 0 ? '+' : ''}${m.soak.slopeMbPerMin.toFixed(2)} MB/min`,
      limit: 'no growth',
      pass: !m.soak.grew
    })
  }
  return checks
}

function memoryMarkdown (m: MemoryResults): string {
  const lines: string[] = []
  lines.push(`Gateway ${m.settings.upstreamConnections === 0 ? 'at its defaults (no upstream connection cap)' : `with \`UPSTREAM_CONNECTIONS=${m.settings.upstreamConnections}\``}; simulator streams ${m.settings.tokens} chunks ${m.settings.intervalMs} ms apart (about ${(m.settings.tokens * m.settings.intervalMs / 1000).toFixed(1)} s per stream). RSS is VmRSS of the gateway process; idle right after start ${m.idleAfterStartMb.toFixed(1)} MB; "before" is after a warm-up of fast streams and JSON (32 connections, 2 × --warmup s), i.e. a gateway that has served load.`, '')
  lines.push('| burst | streams | completed | failed | max in flight (/health) | seconds | RSS before MB | RSS max MB | (max − before) per stream KB | RSS at end MB | RSS after 5 s idle MB |')
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  m.bursts.forEach((b, i) => lines.push(`| ${i + 1} | ${b.streams} | ${b.completed} | ${b.failed} | ${b.maxInFlight} | ${b.seconds.toFixed(1)} | ${b.rssBeforeMb.toFixed(1)} | ${b.rssMaxMb.toFixed(1)} | ${((b.rssMaxMb - b.rssBeforeMb) * 1024 / b.streams).toFixed(1)} | ${b.rssAtEndMb.toFixed(1)} | ${b.rssAfterIdleMb.toFixed(1)} |`))
  if (m.soak) {
    const s = m.soak
    lines.push('', `Soak: ${s.minutes.toFixed(1)} min of steady load (${m.settings.soakFastConnections} connections cycling fast streams and JSON, ${m.settings.soakSlowConnections} connections of slow streams); ${fmt(s.requests)} requests, ${s.non2xx} non-2xx, ${s.errors} errors.`, '')
    lines.push('| idle before MB | first sample MB | last sample MB | min MB | max MB | growth (last third − first third) MB | slope MB/min | slope 2nd half MB/min | idle 10 s after MB | grew |')
    lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    lines.push(`| ${s.beforeMb.toFixed(1)} | ${s.startMb.toFixed(1)} | ${s.endMb.toFixed(1)} | ${s.minMb.toFixed(1)} | ${s.maxMb.toFixed(1)} | ${s.growthMb.toFixed(1)} | ${s.slopeMbPerMin.toFixed(2)} | ${s.slopeSecondHalfMbPerMin.toFixed(2)} | ${s.afterIdleMb.toFixed(1)} | ${s.grew ? '**yes**' : 'no'} |`)
    lines.push('', 'RSS samples (s: MB): ' + s.samples.map(x => `${x.atSeconds.toFixed(0)}: ${x.rssMb.toFixed(1)}`).join(', '))
  }
  lines.push('')
  return lines.join('\n')
}

// ---- concurrency ----

interface ConcurrencyResults {
  settings: { streams: number, tokens: number, intervalMs: number, cap: number, rounds: number, warmup: number, settleSeconds: number }
  /** One stream alone, straight to the simulator, before the bursts: the length of a stream, seconds. */
  streamSeconds: number
  /** Where each process ran (Cpus_allowed_list read back from /proc), and the pinning decision. */
  cpus: Record<string, string>
  pinning: string
  runs: ConcurrencyRun[]
  /** Medians over the rounds, one row per target: floor, gateway, gateway-capN. */
  table: ConcurrencyRun[]
}

/** Seconds one stream of the concurrency phase should last, before it is measured: frames × interval. */
function concurrencyStreamEstimate (): number {
  // The simulator sends a role chunk, one chunk per token, a finish chunk, the usage chunk and [DONE], the
  // interval before each but the first.
  return (settings.concurrencyTokens + 3) * settings.concurrencyIntervalMs / 1000
}

async function concurrencyRun (): Promise<ConcurrencyResults> {
  const n = settings.concurrencyStreams
  const cap = settings.concurrencyCap
  // A target holds two sockets per stream (client and upstream), the simulator one per stream plus idle
  // keep-alive ones from the run before, the runner one per stream.
  log(`concurrency: ${ensureOpenFiles(2 * n + 512)}`)
  const sim = await startSimulatorProcess('simulator (concurrency)', { tokens: settings.concurrencyTokens, intervalMs: settings.concurrencyIntervalMs, firstChunkDelayMs: 0 })
  const started: Target[] = [sim]
  try {
    const floor = await startBareProxy(sim.origin, 0)
    started.push(floor)
    const gateway = await startGateway({ upstreamOrigin: sim.origin, apiKey: CLIENT_KEY, nodeArgs: settings.gatewayNodeArgs, logPath: settings.logFile })
    started.push(gateway)
    const rows: Array<{ name: string, upstreamConnections: number, target: Target }> = [
      { name: 'floor', upstreamConnections: 0, target: floor },
      { name: 'gateway', upstreamConnections: 0, target: gateway }
    ]
    if (cap > 0) {
      const capped = await startGateway({ upstreamOrigin: sim.origin, apiKey: CLIENT_KEY, env: { UPSTREAM_CONNECTIONS: String(cap) }, nodeArgs: settings.gatewayNodeArgs, logPath: settings.logFile })
      started.push(capped)
      rows.push({ name: `gateway-cap${cap}`, upstreamConnections: cap, target: capped })
    }
    const cpus: Record<string, string> = { runner: affinityOf('self'), simulator: sim.cpus }
    for (const r of rows) cpus[r.name] = r.target.cpus
    log(`concurrency: simulator ${settings.concurrencyTokens} chunks ${settings.concurrencyIntervalMs} ms apart; CPUs: ${Object.entries(cpus).map(([k, v]) => `${k} ${v}`).join(', ')}`)

    // Checks and warm-up with fast streams (the simulator's interval overridden per request); the slow stream
    // of the bursts is measured once alone, straight to the simulator.
    const fastStream = request({ stream: true, stream_options: { include_usage: true }, sim: { intervalMs: 0 } })
    await checkKeyRequired(gateway)
    for (const r of rows) await checkRequest(r.name, r.target.origin, fastStream)
    const streamSeconds = await oneStreamSeconds(sim.origin, WORKLOADS.stream, concurrencyStreamEstimate() * 3000 + 30_000)
    log(`concurrency: one stream alone, straight to the simulator: ${streamSeconds.toFixed(2)} s`)
    for (const r of rows) {
      log(`warm-up ${r.name} fast streams 64 connections ${settings.warmup} s`)
      if (settings.warmup > 0) await warmUp(r.target.origin, fastStream, 64, settings.warmup)
    }

    const runs: ConcurrencyRun[] = []
    for (let round = 0; round < settings.rounds; round++) {
      for (let k = 0; k < rows.length; k++) {
        const r = rows[(k + round) % rows.length]
        const waves = r.upstreamConnections > 0 ? Math.ceil(n / r.upstreamConnections) : 1
        // Let the keep-alive connections of the run before close on every side.
        await sleep(3000)
        const run = await concurrentStreams({
          target: r.name,
          upstreamConnections: r.upstreamConnections,
          round: round + 1,
          origin: r.target.origin,
          request: WORKLOADS.stream,
          streams: n,
          budgetMs: Math.round(((waves + 2) * streamSeconds * 2 + 60) * 1000),
          targetPid: r.target.pid,
          simulatorPid: sim.pid,
          settleMs: settings.settleSeconds * 1000
        })
        runs.push(run)
        const failures = Object.entries(run.failures).map(([cause, count]) => `${cause} ×${count}`).join(', ')
        log(`round ${round + 1} ${r.name.padEnd(15)} ${n} streams: wall ${run.wallSeconds.toFixed(2)} s  completion p50 ${run.completion.p50.toFixed(2)} s p99 ${run.completion.p99.toFixed(2)} s  first byte p99 ${run.firstByte.p99.toFixed(2)} s  most flowing ${run.maxFlowing}  listen overflows ${run.listenOverflows}  completed ${run.completed} failed ${run.failed}${failures ? ` (${failures})` : ''}  cores: target ${run.targetCores.toFixed(2)} simulator ${run.simulatorCores.toFixed(2)}`)
      }
    }
    return {
      settings: { streams: n, tokens: settings.concurrencyTokens, intervalMs: settings.concurrencyIntervalMs, cap, rounds: settings.rounds, warmup: settings.warmup, settleSeconds: settings.settleSeconds },
      streamSeconds,
      cpus,
      pinning: pinningNote,
      runs,
      table: rows.map(r => medianConcurrency(runs.filter(x => x.target === r.name)))
    }
  } finally {
    for (const t of started.reverse()) await t.stop()
  }
}

function medianConcurrency (runs: ConcurrencyRun[]): ConcurrencyRun {
  if (runs.length === 1) return runs[0]
  const m = (pick: (r: ConcurrencyRun) => number) => median(runs.map(pick))
  const failures: Record<string, number> = {}
  for (const r of runs) for (const [cause, count] of Object.entries(r.failures)) failures[cause] = (failures[cause] ?? 0) + count
  return {
    ...runs[0],
    round: 0,
    streams: runs.reduce((s, r) => s + r.streams, 0),
    completed: runs.reduce((s, r) => s + r.completed, 0),
    failed: runs.reduce((s, r) => s + r.failed, 0),
    failures,
    wallSeconds: m(r => r.wallSeconds),
    headers: { p50: m(r => r.headers.p50), p99: m(r => r.headers.p99), max: m(r => r.headers.max) },
    firstByte: { p50: m(r => r.firstByte.p50), p99: m(r => r.firstByte.p99), max: m(r => r.firstByte.max) },
    completion: { p50: m(r => r.completion.p50), p99: m(r => r.completion.p99), max: m(r => r.completion.max) },
    // The worst round: a queue in any round shows.
    maxFlowing: Math.min(...runs.map(r => r.maxFlowing)),
    targetCores: m(r => r.targetCores),
    simulatorCores: m(r => r.simulatorCores),
    listenOverflows: m(r => r.listenOverflows),
    rss: { before: m(r => r.rss.before), peak: m(r => r.rss.peak), after: m(r => r.rss.after) }
  }
}

function concurrencyChecks (c: ConcurrencyResults): Check[] {
  const floor = c.table.find(r => r.target === 'floor')
  const gateway = c.table.find(r => r.target === 'gateway')
  const capped = c.table.find(r => r.upstreamConnections > 0)
  const n = c.settings.streams
  const checks: Check[] = []
  if (gateway) {
    checks.push({ target: `${fmt(n)} streams at once through the gateway (defaults) all end with [DONE]`, measured: `${fmt(gateway.completed)} of ${fmt(gateway.streams)}${gateway.failed > 0 ? ` (${failuresText(gateway.failures)})` : ''}`, limit: 'all', pass: gateway.failed === 0 })
    checks.push({ target: 'No silent queue: every stream flowing at the same time through the gateway (defaults)', measured: `at most ${fmt(gateway.maxFlowing)} at once`, limit: `${fmt(n)}`, pass: gateway.maxFlowing >= n })
    if (floor) {
      checks.push({ target: 'Wall time for all the streams, gateway (defaults) vs floor', measured: `${fmtRatio(ratio(gateway.wallSeconds, floor.wallSeconds))} floor (${gateway.wallSeconds.toFixed(2)} vs ${floor.wallSeconds.toFixed(2)} s; one stream alone ${c.streamSeconds.toFixed(2)} s)`, limit: '–', pass: null })
    }
  }
  if (capped) {
    const waves = Math.ceil(n / capped.upstreamConnections)
    checks.push({ target: `The queue with UPSTREAM_CONNECTIONS=${capped.upstreamConnections} (the old default)`, measured: `${capped.wallSeconds.toFixed(2)} s = ${(capped.wallSeconds / c.streamSeconds).toFixed(2)} stream lengths; at most ${fmt(capped.maxFlowing)} streams at once`, limit: `shows: about ${waves} stream lengths`, pass: null })
  }
  return checks
}

const failuresText = (failures: Record<string, number>) => Object.entries(failures).map(([cause, count]) => `${cause} ×${count}`).join(', ')
const sec = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–')

function concurrencyMarkdown (c: ConcurrencyResults): string {
  const lines: string[] = []
  const cap = c.settings.cap
  lines.push(`${fmt(c.settings.streams)} streamed requests started at once from the runner (undici, one connection per stream, no client-side cap), each read to \`data: [DONE]\`; the simulator streams ${c.settings.tokens} chunks ${c.settings.intervalMs} ms apart, and one stream alone, straight to the simulator, lasted ${c.streamSeconds.toFixed(2)} s. Targets: the floor (bare proxy, no upstream connection cap), the gateway at its defaults (no cap)${cap > 0 ? `, and the gateway with \`UPSTREAM_CONNECTIONS=${cap}\` (the old default: ${fmt(c.settings.streams)} streams over ${cap} connections go in ${Math.ceil(c.settings.streams / cap)} waves)` : ''}. Each after a warm-up of ${c.settings.warmup} s of fast streams${c.settings.rounds > 1 ? `; medians of ${c.settings.rounds} rounds in rotating order (failures summed, "most at once" the lowest round)` : ''}. Times per stream are from the start of the burst to the stream's response headers, first event and end. "Most at once" is the largest number of streams receiving events at the same moment, as the client saw it. Cores: CPU use of the target and of the simulator during the burst. "Listen overflows": the host's TcpExt ListenOverflows during the burst, handshakes dropped because a listen queue was full (Node's default backlog is 511; the gateway, the floor and the simulator listen with 4,096, below the kernel's net.core.somaxconn); each such client retries after about 1 s, which shows in the headers and first-event times. RSS: the target's, just before the burst (after its warm-up), at its peak during the burst (sampled every 100 ms), and ${c.settings.settleSeconds} s after it (\`--settle-seconds\`).`, '')
  lines.push(`CPUs: ${c.pinning}. Read back from /proc: ${Object.entries(c.cpus).map(([k, v]) => `${k} ${v || '?'}`).join(', ')}.`, '')
  lines.push('| target | upstream connections | streams | completed | failed | wall s | ×floor | completion p50 s | ×floor | completion p99 s | ×floor | headers p99 s | first event p50 / p99 s | most at once | target cores | simulator cores | listen overflows | RSS MB before → peak → after | peak ×floor | after ×before |')
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  const f = c.table.find(r => r.target === 'floor')
  for (const r of c.table) {
    lines.push(`| ${r.target} | ${r.upstreamConnections === 0 ? 'no cap' : r.upstreamConnections} | ${fmt(r.streams)} | ${fmt(r.completed)} | ${r.failed}${r.failed > 0 ? ` (${failuresText(r.failures)})` : ''} | ${sec(r.wallSeconds)} | ${fmtRatio(ratio(r.wallSeconds, f?.wallSeconds ?? NaN))} | ${sec(r.completion.p50)} | ${fmtRatio(ratio(r.completion.p50, f?.completion.p50 ?? NaN))} | ${sec(r.completion.p99)} | ${fmtRatio(ratio(r.completion.p99, f?.completion.p99 ?? NaN))} | ${sec(r.headers.p99)} | ${sec(r.firstByte.p50)} / ${sec(r.firstByte.p99)} | ${fmt(r.maxFlowing)} | ${r.targetCores.toFixed(2)} | ${r.simulatorCores.toFixed(2)} | ${fmt(r.listenOverflows)} | ${r.rss.before.toFixed(1)} → ${r.rss.peak.toFixed(1)} → ${r.rss.after.toFixed(1)} | ${fmtRatio(ratio(r.rss.peak, f?.rss.peak ?? NaN))} | ${fmtRatio(ratio(r.rss.after, r.rss.before))} |`)
  }
  lines.push('')
  return lines.join('\n')
}

// ---- profile ----

interface ProfileResults {
  target: 'gateway' | 'floor'
  workload: WorkloadName
  connections: number
  seconds: number
  rps: number
  requests: number
  summary: ProfileSummary
}

async function profileRun (kind: 'gateway' | 'floor', workload: WorkloadName): Promise<ProfileResults> {
  const dir = join(settings.out, 'profiles')
  mkdirSync(dir, { recursive: true })
  const name = `${kind}-${workload}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`
  const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', name]
  const connections = Math.max(...settings.connections)
  const sim = await startUpstream()
  const target = kind === 'gateway'
    ? await startGateway({ upstreamOrigin: sim.origin, apiKey: CLIENT_KEY, nodeArgs: [...settings.gatewayNodeArgs, ...nodeArgs], logPath: settings.logFile })
    : await startBareProxy(sim.origin, 0, nodeArgs)
  let run: LoadRun
  let window: { fromUs: number, toUs: number }
  try {
    await check(kind, target.origin, workload)
    log(`profile: ${kind} ${workload} warm-up ${settings.warmup} s, then ${settings.duration} s at ${connections} connections under --cpu-prof`)
    if (settings.warmup > 0) await warmUp(target.origin, WORKLOADS[workload], connections, settings.warmup)
    // V8's profile timestamps and process.hrtime share the monotonic clock: keep only the measured window.
    const fromUs = Number(process.hrtime.bigint() / 1000n)
    run = await runLoad({ target: kind, origin: target.origin, workload, request: WORKLOADS[workload], connections, seconds: settings.duration, targetPid: target.pid, upstreamPid: sim.pid })
    window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) }
  } finally {
    // SIGTERM: the process closes gracefully and exits, which is when Node writes the profile.
    await target.stop(20_000)
    await sim.stop()
  }
  const summary = summariseProfile(join(dir, name), window)
  return { target: kind, workload, connections, seconds: run.seconds, rps: run.rps, requests: run.responses, summary }
}

// ---- main ----

async function main (): Promise<void> {
  const m: Machine = machine(process.argv.slice(2), pinningNote, pinning.available)
  log('compiling the gateway (npm run build)')
  buildGateway()
  log(machineMarkdown(m))
  const md: string[] = ['# Qwen Gateway benchmark', '', machineMarkdown(m), '']
  if (settings.gatewayNodeArgs.length > 0) md.push(`**The gateway ran with extra Node flags: \`${settings.gatewayNodeArgs.join(' ')}\`** (not as users run it).`, '')
  const json: Record<string, unknown> = { machine: m }
  const checks: Check[] = []

  // A phase's result joins the combined report and gets its own file, with the checks against the issues' targets.
  const record = <R extends object>(name: string, heading: string, result: R, c: Check[], markdown: string, checksHeading?: string) => {
    checks.push(...c)
    const section = [`## ${heading}`, '', markdown, checksMarkdown(c, checksHeading), ''].join('\n')
    md.push(section)
    json[name] = { ...result, checks: c }
    writeResults(name, [`# ${name[0].toUpperCase()}${name.slice(1)}`, '', machineMarkdown(m), '', section].join('\n'), { machine: m, ...result, checks: c })
  }
  if (phases.throughput) {
    const t = await throughput()
    record('throughput', 'Throughput, latency, CPU, idle RSS (gateway vs floor vs upstream)', t, throughputChecks(t), throughputMarkdown(t))
  }
  if (phases.memory) {
    const r = await memoryRun()
    record('memory', 'Memory: concurrent slow streams and soak', r, memoryChecks(r), memoryMarkdown(r))
  }
  if (phases.concurrency) {
    const r = await concurrencyRun()
    record('concurrency', 'Concurrency: streams started at once (no silent queue)', r, concurrencyChecks(r), concurrencyMarkdown(r), 'Issue 9: streams do not queue')
  }
  if (phases.profile) {
    const results: ProfileResults[] = []
    const parts: string[] = ['## CPU profile of the gateway under load', '']
    const kinds = opts['profile-floor'] ? ['gateway', 'floor'] as const : ['gateway'] as const
    for (const workload of settings.profileWorkloads) {
      for (const kind of kinds) {
        const p = await profileRun(kind, workload)
        results.push(p)
        parts.push(profileMarkdown(`${kind}, ${workload}, ${p.connections} connections, ${fmt(p.rps)} req/s under the profiler`, p.summary, p.requests))
      }
    }
    const section = parts.join('\n')
    md.push(section)
    json.profile = results
    writeResults('profile', ['# Profile', '', machineMarkdown(m), '', section].join('\n'), { machine: m, profiles: results })
  }
  if (phases.throughput && phases.memory) md.push('## Targets', '', checksMarkdown(checks), '')
  const markdown = md.join('\n')
  writeResults('latest', markdown, json)
  console.log(markdown)
  log(`results written to ${join(settings.out, 'latest.md')} and latest.json`)
}

try {
  await main()
} catch (error) {
  log(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
  process.exitCode = 1
} finally {
  killAll()
}
// Keep-alive sockets of fetch's global agent must not hold the process open for seconds.
process.exit()

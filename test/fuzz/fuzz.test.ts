import { randomBytes } from 'node:crypto'
import http from 'node:http'
import t, { type Test } from 'tap'
import { startSimulator } from '../simulator/index.ts'
import { CATEGORIES, generateCase, type FuzzCase, type FuzzContext } from './cases.ts'
import { checkOutcome, type Problem } from './check.ts'
import { sendHttp, sendRaw, type Outcome } from './client.ts'
import { startGateway, type GatewayProcess } from './gateway-process.ts'
import { knownCases } from './known-cases.ts'
import { hashSeed } from './random.ts'

// Bad input (issue 3): thousands of malformed, mistyped, truncated, deeply nested and oversized requests to every
// endpoint of a gateway running as its own process in front of the simulator. Every answer must be below 500,
// every 4xx OpenAI's error envelope without stack traces or keys, /v1 must stay closed without a key, and the
// process must stay up with bounded memory.
//
// Reproduce a run with FUZZ_SEED (a number or any text), size it with FUZZ_COUNT and FUZZ_CONCURRENCY, and
// replay single cases with FUZZ_ONLY=12,345 (the ids in the failure reports); FUZZ_VERBOSE=1 lists every case.

const bounded = (value: string | undefined, fallback: number, min: number, max: number) => {
  const number = Number(value)
  return Number.isFinite(number) && value !== undefined && value !== '' ? Math.min(max, Math.max(min, Math.floor(number))) : fallback
}

const SEED_TEXT = process.env.FUZZ_SEED || 'qwen-gateway-fuzz'
const SEED = /^\d+$/.test(SEED_TEXT) ? Number(SEED_TEXT) >>> 0 : hashSeed(SEED_TEXT)
const COUNT = bounded(process.env.FUZZ_COUNT, 3000, 1, 20_000)
const CONCURRENCY = bounded(process.env.FUZZ_CONCURRENCY, 16, 1, 64)
// Stop sending new cases after this long, whatever FUZZ_COUNT says: tap gives the whole file 60 s.
const DEADLINE_MS = bounded(process.env.FUZZ_DEADLINE_MS, 35_000, 1000, 600_000)
const ONLY = process.env.FUZZ_ONLY?.split(',').map(Number).filter(Number.isInteger)
const VERBOSE = process.env.FUZZ_VERBOSE === '1'
const BODY_LIMIT = 65_536
// Measured: about 170 MiB idle, 220-265 MiB after 3000 cases, levelling off near 370 MiB after 30 000 (V8 heap
// and allocator headroom; the heap in use falls back to its starting size). A generous bound on purpose: it
// catches memory that climbs with the request count, not a small leak.
const MEMORY_LIMIT_MIB = 384
const MODELS = ['qwen-plus', 'qwen-flash', 'qwen-turbo', 'qwen3-max', 'qwen3-coder-plus', 'qwq-plus']

const upstreamKey = `sk-fuzz-upstream-${randomBytes(12).toString('hex')}`
const clientKey = `gw-fuzz-client-${randomBytes(12).toString('hex')}`
const secrets = { upstreamKey, clientKey }

const sim = await startSimulator({ apiKeys: [upstreamKey], models: MODELS })
let gateway: GatewayProcess
try {
  gateway = await startGateway({
    DASHSCOPE_BASE_URL: sim.url,
    DASHSCOPE_API_KEY: upstreamKey,
    GATEWAY_API_KEYS: clientKey,
    BODY_LIMIT: String(BODY_LIMIT),
    LOG_LEVEL: 'warn',
    SHUTDOWN_GRACE_MS: '1000',
    UPSTREAM_CONNECT_TIMEOUT_MS: '2000',
    UPSTREAM_HEADERS_TIMEOUT_MS: '10000',
    UPSTREAM_BODY_TIMEOUT_MS: '10000',
    RATE_LIMIT_RPM: '0',
    RATE_LIMIT_TPM: '0'
  })
} catch (error) {
  await sim.close()
  throw error
}
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
t.teardown(async () => {
  agent.destroy()
  await gateway.stop()
  await sim.close()
})

const port = gateway.port
const origin = `http://127.0.0.1:${port}`
const ctx: FuzzContext = { key: clientKey, bodyLimit: BODY_LIMIT, models: MODELS, authority: `127.0.0.1:${port}` }
t.comment(`seed ${SEED_TEXT} (${SEED}), ${ONLY ? `cases ${ONLY.join(',')}` : `${COUNT} cases`}, concurrency ${CONCURRENCY}, BODY_LIMIT ${BODY_LIMIT}`)

const send = (c: FuzzCase): Promise<Outcome> => c.raw ? sendRaw(port, c, 8000) : sendHttp(port, agent, c, 15_000)

// ---------------------------------------------------------------------------------------------------------------
// Reporting helpers.

// Reports stay printable ASCII: fuzzed text (U+2028, BOMs, control characters) would garble tap's YAML output.
const ascii = (text: string) => text.replace(/[^\x20-\x7e]/g, char => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
const redact = (text: string) => ascii(text.split(clientKey).join('<client-key>').split(upstreamKey).join('<upstream-key>'))
const preview = (buffer: Buffer | undefined, length = 300) => buffer === undefined ? undefined : `${buffer.length} bytes: ${redact(JSON.stringify(buffer.subarray(0, length).toString('utf8')))}`

function describeCase (c: FuzzCase) {
  const headers: string[] = []
  for (let i = 0; i < c.headers.length && headers.length < 20; i += 2) headers.push(`${c.headers[i]}: ${redact(c.headers[i + 1]).slice(0, 100)}`)
  return {
    id: c.id,
    replay: /^\d+$/.test(c.id) ? `FUZZ_SEED=${SEED_TEXT} FUZZ_ONLY=${c.id}` : undefined,
    category: c.category,
    label: redact(c.label),
    request: c.raw ? `raw ${preview(Buffer.concat(c.raw), 600)}` : `${c.method} ${redact(c.path).slice(0, 300)}`,
    headers: c.raw ? undefined : headers,
    body: preview(c.body)
  }
}

function describeOutcome (outcome: Outcome) {
  return {
    error: outcome.error,
    answers: outcome.answers.map(answer => ({
      status: answer.status,
      contentType: answer.headers['content-type'] === undefined ? undefined : redact(answer.headers['content-type']),
      requestId: answer.headers['x-request-id'],
      body: preview(answer.body)
    }))
  }
}

/** The gateway's log lines about the requests with these ids (5xx are logged with their error there). */
function logFor (ids: Array<string | undefined>): string[] {
  const wanted = ids.filter((id): id is string => id !== undefined)
  if (wanted.length === 0) return []
  return gateway.lines.filter(line => wanted.some(id => line.includes(id))).slice(0, 3).map(line => redact(line).slice(0, 2000))
}

interface Failure {
  case: ReturnType<typeof describeCase>
  outcome: ReturnType<typeof describeOutcome>
  problems: string[]
  log?: string[]
}

// ---------------------------------------------------------------------------------------------------------------

// Taken at the end of the warm-up (tap ends the file if the top level awaits anything but a subtest).
let memoryBefore: ReturnType<GatewayProcess['memory']> = null
let heapBefore: number | null = null

/** The V8 heap in use, from the gateway's own /metrics (prom-client's default metrics), in MiB. */
async function heapUsed (): Promise<number | null> {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const match = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)/m.exec(text)
  return match ? Number(match[1]) / 1024 / 1024 : null
}

await t.test('the stack works before the fuzzing starts', async t => {
  const headers = { authorization: `Bearer ${clientKey}`, 'content-type': 'application/json' }
  const models = await fetch(`${origin}/v1/models`, { headers })
  t.equal(models.status, 200, 'GET /v1/models')
  await models.arrayBuffer()
  const chat = await fetch(`${origin}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] }) })
  t.equal(chat.status, 200, 'a valid chat request reaches the simulator')
  await chat.arrayBuffer()
  for (const path of ['/openapi.json', '/docs', '/metrics', '/health']) {
    const response = await fetch(`${origin}${path}`)
    await response.arrayBuffer()
    t.equal(response.status, 200, `GET ${path}`)
  }
  memoryBefore = gateway.memory()
  heapBefore = await heapUsed()
})

await t.test('known hard cases', async t => {
  for (const c of knownCases(ctx)) {
    const outcome = await send(c)
    const problems = checkOutcome(c, outcome, secrets)
    const details = { request: describeCase(c), outcome: describeOutcome(outcome), log: logFor(outcome.answers.map(answer => answer.headers['x-request-id'])) }
    t.same(problems.map(problem => redact(`${problem.kind}: ${problem.detail}`)), [], c.label, problems.length > 0 ? details : {})
  }
  t.equal(gateway.exit, null, 'the gateway is still running')
})

await t.test(`fuzz: ${ONLY ? ONLY.length : COUNT} generated cases`, async t => {
  const ids = ONLY ?? Array.from({ length: COUNT }, (_, i) => i)
  const stats = new Map<string, { count: number, ms: number, answers: Map<string, number> }>()
  const failures = new Map<string, { count: number, examples: Failure[], shapes: Set<string> }>()
  const started = performance.now()
  let next = 0
  let sent = 0
  let stoppedEarly = false

  async function worker () {
    while (next < ids.length) {
      if (performance.now() - started > DEADLINE_MS) {
        stoppedEarly = true
        return
      }
      if (gateway.exit) return
      const c = generateCase(SEED, ids[next++], ctx)
      const outcome = await send(c)
      sent++
      // The simulator keeps every request it saw; the fuzzer has no use for them.
      if (sim.requests.length > 100) sim.requests.length = 0

      const stat = stats.get(c.category) ?? { count: 0, ms: 0, answers: new Map() }
      stats.set(c.category, stat)
      stat.count++
      stat.ms += outcome.ms
      const answerKey = outcome.answers.length > 0 ? String(outcome.answers[0].status) : (outcome.error ?? 'closed')
      stat.answers.set(answerKey, (stat.answers.get(answerKey) ?? 0) + 1)

      const problems: Problem[] = checkOutcome(c, outcome, secrets)
      if (VERBOSE) t.comment(`#${c.id} ${c.category}: ${redact(c.label).slice(0, 120)} -> ${answerKey} in ${Math.round(outcome.ms)} ms${problems.length > 0 ? ` PROBLEMS: ${problems.map(problem => problem.kind).join(', ')}` : ''}`)
      if (problems.length === 0) continue
      const signature = `${c.category}: ${[...new Set(problems.map(problem => problem.kind))].join(' + ')}`
      const group = failures.get(signature) ?? { count: 0, examples: [], shapes: new Set() }
      failures.set(signature, group)
      group.count++
      // A few examples per kind of failure, of different shapes where there are.
      const shape = c.label.replace(/\d+/g, 'N')
      if (group.examples.length < 4 && !group.shapes.has(shape)) {
        group.shapes.add(shape)
        group.examples.push({ case: describeCase(c), outcome: describeOutcome(outcome), problems: problems.map(problem => redact(`${problem.kind}: ${problem.detail}`)) })
      }
    }
  }

  const rssSamples: number[] = []
  const memorySampler = setInterval(() => {
    const memory = gateway.memory()
    if (memory) rssSamples.push(Math.round(memory.rss))
  }, 1000)
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()))
  clearInterval(memorySampler)
  const seconds = (performance.now() - started) / 1000
  if (rssSamples.length > 0) t.comment(`gateway RSS during the run, MiB, once a second: ${rssSamples.join(' ')}`)

  t.comment(`${sent} requests in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s)${stoppedEarly ? `, stopped at the ${DEADLINE_MS} ms deadline` : ''}`)
  const order = new Map(CATEGORIES.map(([, name], index) => [name, index]))
  for (const [category, stat] of [...stats].sort(([a], [b]) => (order.get(a) ?? 0) - (order.get(b) ?? 0))) {
    const answers = [...stat.answers].sort(([, a], [, b]) => b - a).map(([answer, count]) => `${answer}×${count}`).join(' ')
    t.comment(`${category.padEnd(15)} ${String(stat.count).padStart(5)}  avg ${(stat.ms / stat.count).toFixed(1).padStart(6)} ms  ${answers}`)
  }

  t.equal(gateway.exit, null, 'the gateway process is still running', { exit: gateway.exit, lastLines: gateway.lines.slice(-10).map(redact) })
  t.ok(sent >= Math.min(ids.length, 500), 'enough cases were sent', { sent })
  for (const [signature, group] of failures) {
    for (const example of group.examples) example.log = logFor(example.outcome.answers.map(answer => answer.requestId))
    t.fail(`${signature} (${group.count} case${group.count === 1 ? '' : 's'})`, { examples: group.examples })
  }
  if (failures.size === 0) t.pass(`every answer to ${sent} cases was below 500, and every 4xx was the error envelope`)
})

await t.test('after the fuzzing', async t => {
  t.equal(gateway.exit, null, 'the gateway process is still running')
  const health = await fetch(`${origin}/health`)
  t.equal(health.status, 200, 'GET /health still answers 200')
  await health.arrayBuffer()
  const models = await fetch(`${origin}/v1/models`, { headers: { authorization: `Bearer ${clientKey}` } })
  t.equal(models.status, 200, 'GET /v1/models still answers 200')
  await models.arrayBuffer()

  // Metric labels must not take their values from what clients send (paths, model ids): bounded cardinality.
  const metrics = await fetch(`${origin}/metrics`)
  const exposition = await metrics.text()
  t.equal(metrics.status, 200, 'GET /metrics still answers 200')
  t.comment(`/metrics after the run: ${exposition.length} bytes, ${exposition.split('\n').length} lines`)
  t.ok(exposition.length < 1024 * 1024, '/metrics stays below 1 MiB: no label per fuzzed path or model', { bytes: exposition.length })

  checkMemory(t, await heapUsed())
  // The gateway writes its log in batches, flushed at least every 500 ms: wait for the last of them.
  await new Promise(resolve => setTimeout(resolve, 700))
  checkLog(t)
})

function checkMemory (t: Test, heapAfter: number | null) {
  if (heapBefore !== null && heapAfter !== null) t.comment(`gateway V8 heap in use: ${heapBefore.toFixed(1)} MiB before, ${heapAfter.toFixed(1)} MiB after (no GC forced)`)
  const after = gateway.memory()
  if (!memoryBefore || !after) {
    t.comment('no /proc/<pid>/status here: memory not measured')
    return
  }
  t.comment(`gateway RSS: ${memoryBefore.rss.toFixed(1)} MiB before, ${after.rss.toFixed(1)} MiB after, peak ${after.peak.toFixed(1)} MiB (limit ${MEMORY_LIMIT_MIB} MiB)`)
  t.ok(after.rss < MEMORY_LIMIT_MIB, `RSS after the run below ${MEMORY_LIMIT_MIB} MiB`, { rss: after.rss })
  t.ok(after.peak < MEMORY_LIMIT_MIB, `peak RSS below ${MEMORY_LIMIT_MIB} MiB`, { peak: after.peak })
}

function checkLog (t: Test) {
  const lines = gateway.lines
  const severe = lines.filter(line => /"level":(?:50|60)\b/.test(line) || /uncaught|unhandled|fatal/i.test(line))
  const summaries = severe.slice(0, 10).map(line => {
    try {
      const entry = JSON.parse(line) as { msg?: string, reqId?: string, err?: { type?: string, message?: string, stack?: string } }
      const frames = entry.err?.stack?.split('\n').slice(1, 4).map(frame => frame.trim()).join(' | ')
      return redact(`${entry.msg} (${entry.reqId}): ${entry.err?.type}: ${entry.err?.message} ${frames ?? ''}`).slice(0, 600)
    } catch {
      return redact(line).slice(0, 600)
    }
  })
  t.same(summaries, [], `no error, fatal or uncaught-exception lines in the gateway log (${severe.length} found)`)
  t.notOk(lines.some(line => line.includes(upstreamKey)), 'the upstream key never appears in the gateway log')
  t.notOk(lines.some(line => line.includes(clientKey)), 'the client key never appears in the gateway log')
}

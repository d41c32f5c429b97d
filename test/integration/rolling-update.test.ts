import t from 'tap'
import { postJson, user } from '../helper.ts'
import { spawnGateway } from '../process-helper.ts'
import { startSimulator } from '../simulator/index.ts'
import { readSse, type SseRead } from './http.ts'
import { REPLICA_ALIAS, inCI, portFreeOn, requireBinary, startNginx, type Teardown } from './servers.ts'

// A rolling update as compose does it, with the real nginx and real gateway processes: two replicas behind one DNS
// name (127.0.0.2 and 127.0.0.3, one port, as two containers with the alias gateway-replicas), steady load, SIGTERM
// to one of them. Then a third replica replaces it in the DNS answer, and nginx finds it without a restart.

const KEY = 'rolling-update-client-key'
const HEADERS = { authorization: `Bearer ${KEY}` }
const ALIAS = REPLICA_ALIAS.split(':')[0]
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4']

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

interface Replica {
  host: string
  origin: string
  /** Its exit code, once it exited. */
  exited: Promise<number | null>
  output (): string
  signal (name: NodeJS.Signals): void
}

/** `node src/server.ts` on host:port, as a container runs it; ready once /health/ready answers 200. Killed at the end. */
async function startReplica (t: Teardown, host: string, port: number, upstream: string): Promise<Replica> {
  const gateway = await spawnGateway(t, {
    HOST: host,
    PORT: String(port),
    DASHSCOPE_BASE_URL: upstream,
    DASHSCOPE_API_KEY: 'sk-simulated',
    GATEWAY_API_KEYS: KEY,
    GATEWAY_CONFIG: '',
    REDIS_URL: '',
    TRUST_PROXY: 'true',
    SHUTDOWN_GRACE_MS: '20000',
    LOG_LEVEL: 'warn'
  }, { readyPath: '/health/ready', timeoutMs: 20_000 })
  return { host, origin: gateway.origin, exited: gateway.exited, output: gateway.output, signal: name => gateway.child.kill(name) }
}

/** Streams this replica is relaying now, from its operator /health. */
async function streamsOn (replica: Replica): Promise<number> {
  const res = await fetch(`${replica.origin}/health`, { headers: HEADERS })
  const body = await res.json() as { in_flight: { streams: number } }
  return body.in_flight.streams
}

const chat = (extra: Record<string, unknown> = {}) => ({ model: 'qwen-plus', messages: user('hi'), ...extra })
// About 30 content events at 80 ms: a stream of about 2.5 s.
const LONG = Array.from({ length: 24 }, (_, i) => `word${i}`).join(' ')

t.test('SIGTERM to one replica under load: no request fails, its streams finish, it exits 0; a new address is found at run time', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const port = await portFreeOn(ADDRESSES)
  if (port === undefined) {
    if (inCI()) t.fail(`cannot listen on ${ADDRESSES.join(', ')}: the rolling update is untested`)
    else t.plan(0, `this machine cannot listen on ${ADDRESSES.join(', ')}`)
    return
  }
  const sim = await startSimulator()
  t.after(() => sim.close())
  const [a, b] = await Promise.all([startReplica(t, ADDRESSES[0], port, sim.url), startReplica(t, ADDRESSES[1], port, sim.url)])
  const hostOf = (replica: Replica) => new URL(replica.origin).host
  const nginx = await startNginx(t, { services: { [REPLICA_ALIAS]: [hostOf(a), hostOf(b)] } })
  const url = `${nginx.origin}/v1/chat/completions`

  // Steady load: non-streamed requests from 8 clients, one after the other each, until told to stop. The
  // simulator takes 40 ms per answer, so requests are in flight on both replicas at any moment.
  const results: Array<{ status: number, error?: string, at: number }> = []
  const stopLoad = new AbortController()
  const client = async () => {
    while (!stopLoad.signal.aborted) {
      const at = performance.now()
      try {
        const res = await postJson(url, chat({ sim: { ttfbMs: 40 } }), HEADERS)
        await res.text()
        results.push({ status: res.status, at })
      } catch (error) {
        results.push({ status: 0, error: String(error), at })
      }
    }
  }
  const clients = Array.from({ length: 8 }, client)
  await sleep(500)

  // Streams of about 2.5 s, until both replicas relay some (nginx picks an address at random).
  const streams: Array<{ id: string, sentAt: number, read: Promise<SseRead> }> = []
  const startStream = async (id: string, sentAt: number) => {
    const res = await postJson(url, chat({ stream: true, messages: user(LONG), sim: { intervalMs: 80 } }), { ...HEADERS, 'x-request-id': id })
    return readSse(res, sentAt)
  }
  let onA = 0
  let onB = 0
  for (let batch = 0; batch < 4 && (onA === 0 || onB === 0); batch++) {
    for (let i = 0; i < 4; i++) {
      const id = `stream-${batch}-${i}`
      const sentAt = performance.now()
      streams.push({ id, sentAt, read: startStream(id, sentAt) })
    }
    await sleep(300)
    ;[onA, onB] = await Promise.all([streamsOn(a), streamsOn(b)])
  }
  t.ok(onA >= 1 && onB >= 1, `streams in flight when the update starts: ${onA} on ${a.host}, ${onB} on ${b.host}`)

  // The update: SIGTERM to the first replica, as `docker compose up` sends when it recreates gateway-1.
  const stoppedAt = performance.now()
  a.signal('SIGTERM')
  const code = await Promise.race([a.exited, sleep(15_000).then(() => 'still running')])
  const exitedAfter = performance.now() - stoppedAt
  t.equal(code, 0, `the stopped replica exited 0 (${exitedAfter.toFixed(0)} ms after SIGTERM)`)
  // Traffic keeps coming while its address is still in the DNS answer: nginx must move it to the other replica.
  await sleep(1_000)
  stopLoad.abort()
  await Promise.all(clients)
  const reads = await Promise.all(streams.map(stream => stream.read))

  const failed = results.filter(result => result.status !== 200)
  const during = results.filter(result => result.at >= stoppedAt)
  t.ok(results.length >= 50 && during.length >= 20, `${results.length} non-streamed requests, ${during.length} of them sent after the SIGTERM`)
  t.same(failed, [], 'every non-streamed request succeeded at the client')

  const log = nginx.accessLog()
  const aHost = hostOf(a)
  const bHost = hostOf(b)
  const retried = log.filter(entry => entry.upstream_addr === `${aHost}, ${bHost}`)
  t.ok(retried.length >= 1, `nginx moved ${retried.length} request(s) from the stopping replica to the other one`)
  const servedByA = log.filter(entry => entry.upstream_addr === aHost && entry.uri === '/v1/chat/completions')
  t.ok(servedByA.length >= 1, `${servedByA.length} request(s) were served by the stopped replica`)

  const byId = new Map(log.map(entry => [entry.request_id, entry]))
  const streamsOnA = streams.map((stream, i) => ({ ...stream, entry: byId.get(stream.id), result: reads[i] })).filter(stream => stream.entry?.upstream_addr === aHost)
  t.equal(streamsOnA.length, onA, `the access log shows the ${onA} stream(s) on ${a.host}`)
  for (const stream of streamsOnA) {
    const last = stream.result.events.at(-1)
    const afterSigterm = stream.sentAt + (last?.at ?? 0) - stoppedAt
    t.ok(stream.result.status === 200 && !stream.result.error && last?.data === '[DONE]',
      `${stream.id} on the stopped replica completed with [DONE] (${stream.result.events.length} events)`)
    t.ok(afterSigterm > 0, `and went on for ${afterSigterm.toFixed(0)} ms after the SIGTERM`)
  }
  t.ok(reads.every(read => read.status === 200 && !read.error && read.events.at(-1)?.data === '[DONE]'), `all ${reads.length} streams completed with [DONE]`)
  t.ok(exitedAfter >= 500, 'the replica waited for its streams before exiting')

  // Runtime resolution: a third replica on another address replaces both in the DNS answer. nginx keeps running
  // (same process, no reload) and sends it traffic once its cached answer is older than valid=2s.
  const c = await startReplica(t, ADDRESSES[2], port, sim.url)
  const queriesBefore = nginx.dns.queries.filter(query => query.name === ALIAS).length
  nginx.dns.answer(ALIAS, [ADDRESSES[2]])
  const changedAt = performance.now()
  const send = async () => {
    const res = await postJson(url, chat(), HEADERS)
    await res.text()
    return { status: res.status, addr: nginx.accessLog().at(-1)?.upstream_addr }
  }
  let reached = await send()
  while (reached.addr !== hostOf(c) && performance.now() - changedAt < 8_000) {
    await sleep(100)
    reached = await send()
  }
  t.equal(reached.addr, hostOf(c), `the new replica got traffic ${(performance.now() - changedAt).toFixed(0)} ms after the DNS answer changed`)
  // Each nginx worker caches answers on its own; after valid=2s none holds the old one any more.
  await sleep(Math.max(0, changedAt + 2_500 - performance.now()))
  const next = []
  for (let i = 0; i < 6; i++) next.push(await send())
  t.same(next, Array(6).fill({ status: 200, addr: hostOf(c) }), 'once every worker\'s cached answer expired, every request goes to it')
  t.ok(nginx.dns.queries.filter(query => query.name === ALIAS).length > queriesBefore, 'nginx asked the DNS server again')
  t.notMatch(nginx.output(), /reconfiguring|signal process started/, 'nginx was not reloaded')
  t.equal(process.kill(nginx.pid, 0), true, 'the same nginx process is running')
})

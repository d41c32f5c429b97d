import t from 'tap'
import { postJson, user } from '../helper.ts'
import { startSimulator, type RecordedRequest } from '../simulator/index.ts'
import {
  requestId, send, sleep, startReplicas, startRestartableRedis, steadyLoad, writeGatewayConfig, type Replica, type Sent
} from './replicas.ts'
import { REPLICA_ALIAS, inCI, portFreeOn, requireBinary, startNginx } from './servers.ts'

// Issue 13: three gateway processes, one real Redis and the real nginx (deploy/nginx.conf) on one machine, under
// steady load, must behave as one gateway. Each property is checked and its figure printed (t.comment), so the
// tap output carries the measurements: budget overshoot, cooldown propagation, failures when a replica is killed,
// and how long after Redis' return the state is shared again.

const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
const UPSTREAM_KEYS = ['sk-1', 'sk-2', 'sk-3']
const LOAD_KEY = 'load-client-key'
const RPM_KEY = 'rpm-client-key'
const TPM_KEY = 'tpm-client-key'
const OUTAGE_KEY = 'outage-client-key'
const AFTER_KEY = 'after-client-key'
const RPM = 20
const OUTAGE_RPM = 3
const AFTER_RPM = 6
const TPM_REQUESTS = 8
const COOLDOWN_BOUND_MS = 200

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const keyOf = (request: RecordedRequest) => String(request.headers.authorization).replace('Bearer ', '')
const idOf = (request: RecordedRequest) => String(request.headers['x-request-id'])
const chat = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'qwen-plus', messages: user(content), ...extra })
const ms = (value: number) => `${value.toFixed(0)} ms`

/** Whether a burst of about `seconds` fits in the current one-minute budget window; waits for the next one if not. */
async function withinOneWindow (seconds: number): Promise<number> {
  const left = 60_000 - (Date.now() % 60_000)
  if (left < seconds * 1000) await sleep(left + 50)
  return Math.floor(Date.now() / 60_000)
}

/** Sends `count` bodies from `concurrency` loops at once; results in sending order. */
async function burst (count: number, concurrency: number, sendOne: (i: number) => Promise<Sent>): Promise<Sent[]> {
  const results: Sent[] = new Array(count)
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++
      results[i] = await sendOne(i)
    }
  }))
  return results
}

/** Polls a replica's /health until `seen` holds; the time the answer that showed it arrived. */
async function firstSeen (replica: Replica, seen: (health: any) => boolean, timeoutMs: number): Promise<number | null> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    try {
      if (seen(await replica.health())) return performance.now()
    } catch {}
    await sleep(5)
  }
  return null
}

const cooling = (label: string, model: string) => (health: any) =>
  health.upstreams[0].keys.some((key: any) => key.key === label && key.models.some((entry: any) => entry.model === model && entry.state === 'cooling'))

t.test('three replicas behind nginx, sharing one Redis, act as one gateway', async t => {
  if (requireBinary(t, 'nginx') === undefined || requireBinary(t, 'redis-server') === undefined) return
  const port = await portFreeOn(ADDRESSES)
  if (port === undefined) {
    if (inCI()) t.fail(`cannot listen on ${ADDRESSES.join(', ')}: the multi-replica test cannot run`)
    else t.plan(0, `this machine cannot listen on ${ADDRESSES.join(', ')}`)
    return
  }

  const redis = await startRestartableRedis(t)
  const sim = await startSimulator({ apiKeys: UPSTREAM_KEYS })
  t.after(() => sim.close())
  // A request marked `fault` meets a 429 on one upstream key only: the cooldown the replicas must share.
  let faultKey = 'sk-1'
  sim.setOverride(request => request.body?.fault === true && keyOf(request) === faultKey ? { error: 'limit_requests', retryAfter: 30 } : undefined)

  // The token budget fits TPM_REQUESTS reservations and half of one more; each request reserves its prompt estimate
  // (one token per 4 bytes of the body) plus max_tokens, and the simulator reports exactly that as its usage, so
  // settlement changes nothing and the budget's count is the sum of what was admitted.
  const tokenBody = (() => {
    const withPrompt = (prompt: number) => chat('count my tokens', { max_tokens: 50, sim: { usage: { prompt_tokens: prompt, completion_tokens: 50 } } })
    let prompt = 10
    for (let i = 0; i < 5; i++) prompt = Math.ceil(Buffer.byteLength(JSON.stringify(withPrompt(prompt))) / 4)
    const body = withPrompt(prompt)
    if (Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4) !== prompt) throw new Error('the token body did not settle on one size')
    return { body, reserve: prompt + 50 }
  })()
  const TPM = TPM_REQUESTS * tokenBody.reserve + Math.floor(tokenBody.reserve / 2)
  const config = await writeGatewayConfig(t, {
    clients: [
      { name: 'load', key: LOAD_KEY },
      { name: 'rpm', key: RPM_KEY, requests_per_minute: RPM },
      { name: 'tpm', key: TPM_KEY, tokens_per_minute: TPM },
      { name: 'outage', key: OUTAGE_KEY, requests_per_minute: OUTAGE_RPM },
      { name: 'after', key: AFTER_KEY, requests_per_minute: AFTER_RPM }
    ]
  })

  const replicas = await startReplicas(t, ADDRESSES, port, {
    DASHSCOPE_BASE_URL: sim.url,
    DASHSCOPE_API_KEY: UPSTREAM_KEYS.join(','),
    GATEWAY_CONFIG: config,
    GATEWAY_API_KEYS: '',
    REDIS_URL: redis.url,
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'warn'
  }, LOAD_KEY)
  const hostOf = (replica: Replica) => new URL(replica.origin).host
  const nginx = await startNginx(t, { services: { [REPLICA_ALIAS]: replicas.map(hostOf) } })
  const viaNginx = `${nginx.origin}/v1/chat/completions`
  /** Which replica nginx gave each request id to (the first address it tried, then any it moved the request to). */
  const routes = () => new Map(nginx.accessLog().map(entry => [entry.request_id as string, String(entry.upstream_addr).split(', ')]))

  // Steady load for the whole test: conversations that change with every request, so they spread over the keys.
  const load = steadyLoad(viaNginx, bearer(LOAD_KEY), 4, i => chat(`load ${i}`, { sim: { ttfbMs: 30 } }))
  t.teardown(() => load.stop())
  await sleep(500)

  await t.test('per-client request and token budgets hold across replicas', async t => {
    const window = await withinOneWindow(8)
    const requests = await burst(RPM * 3, 12, () => send(viaNginx, chat('budget', { sim: { ttfbMs: 20 } }), bearer(RPM_KEY), 'rpm'))
    const tokens = await burst(TPM_REQUESTS * 3, 8, () => send(viaNginx, tokenBody.body, bearer(TPM_KEY), 'tpm'))
    t.equal(Math.floor(Date.now() / 60_000), window, 'both bursts ran within one budget window')
    const route = routes()
    const admitted = requests.filter(result => result.status === 200)
    const spread = replicas.map(replica => admitted.filter(result => route.get(result.id)?.at(-1) === hostOf(replica)).length)
    t.comment(`requests: ${admitted.length} admitted of ${requests.length} for a budget of ${RPM}/min (per replica: ${spread.join(', ')}); overshoot ${admitted.length - RPM}, tolerance 0`)
    // Tolerance 0: each admission is one atomic script in Redis, and the burst runs within one window.
    t.ok(admitted.length <= RPM, `at most ${RPM} requests admitted in one window: ${admitted.length}`)
    t.equal(admitted.length, RPM, 'and the whole budget was usable')
    t.ok(spread.filter(count => count > 0).length >= 2, 'the admitted requests were served by several replicas')
    t.same(requests.filter(result => result.status !== 200 && result.status !== 429), [], 'the others were refused with 429, nothing else')

    const tokenAdmitted = tokens.filter(result => result.status === 200)
    // What the upstream reported, as the client got it: the tokens really used.
    const used = tokenAdmitted.reduce((sum, result) => sum + (JSON.parse(result.text ?? '{}').usage?.total_tokens ?? 0), 0)
    t.comment(`tokens: ${tokenAdmitted.length} admitted of ${tokens.length}, ${used} tokens used for a budget of ${TPM}/min (${tokenBody.reserve} reserved per request, as much used); overshoot ${Math.max(0, used - TPM)}, tolerance 0 (usage is never above the reservation here)`)
    t.equal(used, tokenAdmitted.length * tokenBody.reserve, 'each admitted request used what it reserved')
    t.equal(Math.min(...tokenAdmitted.map(result => result.remainingTokens ?? Infinity)), TPM - TPM_REQUESTS * tokenBody.reserve,
      'the gateway reserved that much for each (its x-ratelimit-remaining-tokens)')
    t.ok(used <= TPM, `tokens used in one window ≤ the budget: ${used} ≤ ${TPM}`)
    t.equal(tokenAdmitted.length, TPM_REQUESTS, 'and every reservation that fit was admitted')
  })

  await t.test('a conversation keeps its upstream key on every replica', async t => {
    const keysOf = new Map<string, Set<string>>()
    const conversations = Array.from({ length: 6 }, (_, i) => `conversation-${i}`)
    for (const [n, conversation] of conversations.entries()) {
      // Half name themselves with x-session-id; the others are known by their first message, as most agents are.
      const named: Record<string, string> = n % 2 === 0 ? { 'x-session-id': conversation } : {}
      const ids: string[] = []
      // Its turns go to each replica directly, then twice through nginx.
      const targets = [...replicas.map(replica => `${replica.origin}/v1/chat/completions`), viaNginx, viaNginx]
      for (const [turn, url] of targets.entries()) {
        const id = requestId(conversation)
        ids.push(id)
        const messages = [...user(`${conversation} starts`), { role: 'assistant', content: 'ok' }, ...user(`turn ${turn}`)]
        const result = await send(url, { model: 'qwen-plus', messages }, { ...bearer(LOAD_KEY), ...named }, conversation, id)
        t.equal(result.status, 200, `${conversation} turn ${turn}`)
      }
      keysOf.set(conversation, new Set(sim.requests.filter(request => ids.includes(idOf(request))).map(keyOf)))
    }
    const summary = conversations.map(conversation => `${conversation}: ${[...keysOf.get(conversation)!].join('/')}`).join(', ')
    t.comment(`upstream key per conversation (even ones by x-session-id, odd ones by their first message), 5 turns over 3 replicas and nginx: ${summary}`)
    for (const conversation of conversations) t.equal(keysOf.get(conversation)!.size, 1, `${conversation} used one key`)
    t.ok(new Set(conversations.map(conversation => [...keysOf.get(conversation)!][0])).size >= 2, 'different conversations use different keys')
  })

  await t.test('a stored response is found, and continued, from any replica', async t => {
    const create = await postJson(`${replicas[0].origin}/v1/responses`, { model: 'qwen-plus', input: 'remember the word zebra', store: true }, bearer(LOAD_KEY))
    t.equal(create.status, 200)
    const first = await create.json() as { id: string }
    for (const replica of replicas) {
      const res = await fetch(`${replica.origin}/v1/responses/${first.id}`, { headers: bearer(LOAD_KEY) })
      t.equal(res.status, 200, `GET on ${replica.host}`)
      t.match(await res.json(), { id: first.id, status: 'completed' })
    }
    // A chain that moves from replica to replica: each turn's upstream request carries every turn before it.
    let previous = first.id
    const said = ['remember the word zebra']
    for (const replica of [replicas[1], replicas[2], replicas[0]]) {
      const id = requestId('responses')
      const input = `and now a turn on ${replica.host}`
      const res = await postJson(`${replica.origin}/v1/responses`, { model: 'qwen-plus', input, previous_response_id: previous }, { ...bearer(LOAD_KEY), 'x-request-id': id })
      t.equal(res.status, 200, `previous_response_id on ${replica.host}`)
      previous = ((await res.json()) as { id: string }).id
      const upstream = JSON.stringify(sim.requests.find(request => idOf(request) === id)?.body?.messages ?? [])
      for (const text of said) t.ok(upstream.includes(text), `${replica.host} sent the earlier turn "${text}" upstream`)
      said.push(input)
    }
    const viaProxy = await fetch(`${nginx.origin}/v1/responses/${previous}`, { headers: bearer(LOAD_KEY) })
    t.equal(viaProxy.status, 200, 'the last one through nginx too')
  })

  await t.test(`a key cooldown learned by one replica is honoured by the others within ${COOLDOWN_BOUND_MS} ms`, async t => {
    // The fault is on a model the load never asks for: the other replicas cannot meet the 429 themselves, nor can
    // one of their successes on that key (which rightly clears a cooldown everywhere) undo it. What they know of it
    // came through Redis.
    const model = 'qwen3-max'
    const [a, ...others] = replicas
    // Watching starts before the fault, so the first answer that shows the cooldown is timed from the fault itself.
    const watching = [a, ...others].map(replica => firstSeen(replica, cooling('key-1', model), 10_000))
    // At the bound, each other replica is asked for the faulting conversation, which keeps to sk-1 while it is usable.
    const fault = { at: 0, session: '' }
    const probes: Array<Promise<Sent>> = []
    const onFinished = (request: RecordedRequest) => {
      if (fault.at !== 0 || request.body?.fault !== true || keyOf(request) !== 'sk-1') return
      fault.at = request.finishedAt!
      fault.session = String(request.headers['x-session-id'])
      setTimeout(() => {
        for (const replica of others) {
          probes.push(send(`${replica.origin}/v1/chat/completions`, { model, messages: user('probe') }, { ...bearer(LOAD_KEY), 'x-session-id': fault.session }, `probe-${replica.host}`))
        }
      }, COOLDOWN_BOUND_MS - (performance.now() - fault.at))
    }
    sim.events.on('finished', onFinished)
    t.teardown(() => sim.events.off('finished', onFinished))
    for (let i = 0; i < 30 && fault.at === 0; i++) {
      const result = await send(`${a.origin}/v1/chat/completions`, { model, messages: user(`fault ${i}`), fault: true }, { ...bearer(LOAD_KEY), 'x-session-id': `fault-${i}` }, 'fault')
      t.equal(result.status, 200, 'the client is served by another key')
    }
    if (fault.at === 0) return t.fail('no conversation landed on sk-1')
    const faultAt = fault.at
    const [seenOnA, ...seenAt] = await Promise.all(watching)
    const propagation = seenAt.map(at => at === null ? Infinity : at - faultAt)
    // An upper bound: it includes the polling (every ~5 ms, through loaded event loops) and A's own handling of the
    // 429, which the time A's /health took to show it gives an idea of.
    t.comment(`cooldown propagation, from the upstream's 429 to a replica's /health showing the cooldown: ${a.host} (which met it) ${seenOnA === null ? 'never' : ms(seenOnA - faultAt)}, ` +
      `others ${others.map((replica, i) => `${replica.host} ${ms(propagation[i])}`).join(', ')}`)
    for (const [i, replica] of others.entries()) t.ok(propagation[i] <= COOLDOWN_BOUND_MS, `${replica.host} knew within ${COOLDOWN_BOUND_MS} ms: ${ms(propagation[i])}`)

    await sleep(Math.max(0, faultAt + COOLDOWN_BOUND_MS + 100 - performance.now()))
    const answered = await Promise.all(probes)
    t.equal(answered.length, others.length, 'every other replica was asked')
    for (const probe of answered) {
      const upstream = sim.requests.find(request => idOf(request) === probe.id)
      t.equal(probe.status, 200, `${probe.kind}: served`)
      t.not(upstream && keyOf(upstream), 'sk-1', `${probe.kind}, asked ${ms(upstream ? upstream.startedAt - faultAt : NaN)} after the 429, kept the conversation off sk-1 (used ${upstream && keyOf(upstream)})`)
    }
    const onFaultKey = sim.requests.filter(request => keyOf(request) === 'sk-1' && request.body?.model === model && request.startedAt > faultAt)
    t.same(onFaultKey.map(idOf), [], `no replica used sk-1 for ${model} after the 429`)
  })
  await t.test('Redis stopped and restarted: limits fail open, nobody crashes, /health/ready says so, state is shared again', async t => {
    const stoppedAt = performance.now()
    await redis.stop()
    const down = await Promise.all(replicas.map(replica => firstSeen(replica, health => health.shared_state.available === false, 10_000)))
    t.comment(`Redis stopped: the replicas noticed after ${down.map(at => at === null ? 'never' : ms(at - stoppedAt)).join(', ')}`)
    t.ok(down.every(at => at !== null), 'every replica\'s /health says Redis is unavailable')
    for (const replica of replicas) {
      const res = await fetch(`${replica.origin}/health/ready`)
      const body = await res.json()
      t.comment(`/health/ready on ${replica.host} while Redis is away: ${res.status} ${JSON.stringify(body)}`)
      t.equal(res.status, 200, `${replica.host} stays ready: it serves, with limits failing open`)
      t.match(body, { status: 'ready', checks: { upstream_keys: true, shared_state: false } }, 'and says Redis is away')
    }
    const outage = []
    for (let i = 0; i < OUTAGE_RPM * 2; i++) outage.push((await send(`${replicas[i % 3].origin}/v1/chat/completions`, chat('outage'), bearer(OUTAGE_KEY), 'outage')).status)
    t.same(outage, Array(OUTAGE_RPM * 2).fill(200), `limits fail open: ${outage.length} requests served for a budget of ${OUTAGE_RPM}`)
    await sleep(1_000)
    const loadDuring = load.results.filter(result => result.startedAt > stoppedAt)
    t.ok(loadDuring.length >= 10 && loadDuring.every(result => result.status === 200), `the load was served all along (${loadDuring.length} requests)`)
    t.ok(replicas.every(replica => replica.alive()), 'no replica crashed')

    // An outage of a few seconds: the replicas' reconnection attempts have spread out to their usual pace by then.
    await sleep(Math.max(0, stoppedAt + 3_500 - performance.now()))
    await redis.start()
    const backAt = performance.now()
    const up = await Promise.all(replicas.map(replica => firstSeen(replica, health => health.shared_state.available === true, 15_000)))
    const allUp = Math.max(...up.map(at => at ?? Infinity)) - backAt
    t.ok(up.every(at => at !== null), 'every replica reconnected')
    for (const replica of replicas) {
      const res = await fetch(`${replica.origin}/health/ready`)
      t.same(await res.json(), { status: 'ready', checks: { upstream_keys: true, shared_state: true } }, `${replica.host} ready, Redis available`)
    }

    // Shared again: a cooldown learned now on B reaches A and C, and a budget is one budget again.
    faultKey = 'sk-2'
    const [a, b, c] = replicas
    const watching = [a, c].map(replica => firstSeen(replica, cooling('key-2', 'qwen-flash'), 10_000))
    let fault: RecordedRequest | undefined
    for (let i = 0; i < 30 && fault === undefined; i++) {
      const id = requestId('fault-again')
      await send(`${b.origin}/v1/chat/completions`, { model: 'qwen-flash', messages: user(`again ${i}`), fault: true }, { ...bearer(LOAD_KEY), 'x-session-id': `again-${i}` }, 'fault', id)
      fault = sim.requests.find(request => idOf(request) === id && keyOf(request) === 'sk-2')
    }
    if (fault === undefined) return t.fail('no conversation landed on sk-2')
    const seen = await Promise.all(watching)
    const sharedAgain = Math.max(...seen.map(at => at ?? Infinity)) - backAt
    t.comment(`Redis back after ${ms(backAt - stoppedAt)} away: every replica connected ${ms(allUp)} after it answered; a cooldown learned then was everywhere ${ms(sharedAgain)} after Redis answered again (propagation ${seen.map(at => at === null ? 'never' : ms(at - fault!.finishedAt!)).join(', ')})`)
    t.ok(seen.every(at => at !== null && at - fault!.finishedAt! <= COOLDOWN_BOUND_MS), 'the cooldown propagated again')
    t.ok(sharedAgain < 10_000, `state shared again within seconds: ${ms(sharedAgain)}`)

    await withinOneWindow(4)
    const after = []
    for (let i = 0; i < AFTER_RPM * 2; i++) after.push((await send(`${replicas[i % 3].origin}/v1/chat/completions`, chat('after'), bearer(AFTER_KEY), 'after')).status)
    t.same(after, [...Array(AFTER_RPM).fill(200), ...Array(AFTER_RPM).fill(429)], `one budget of ${AFTER_RPM} across the replicas again`)
  })

  await t.test('kill -9 of one replica: only its requests in flight fail, nginx sends the new ones to the others', async t => {
    const victim = replicas[2]
    const victimHost = hostOf(victim)
    // Streams of about 1.5 s beside the short requests: an answer that has begun cannot be moved to another replica.
    const words = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ')
    const streams = steadyLoad(viaNginx, bearer(LOAD_KEY), 6, i => chat(`${words} ${i}`, { stream: true, sim: { intervalMs: 60 } }), 'stream')
    t.teardown(() => streams.stop())
    // Slow JSON answers: in flight on the victim before their headers, which nginx may replay on another replica.
    const slow = steadyLoad(viaNginx, bearer(LOAD_KEY), 4, i => chat(`slow ${i}`, { sim: { ttfbMs: 400 } }), 'slow')
    t.teardown(() => slow.stop())
    let onVictim = 0
    for (let i = 0; i < 40 && onVictim === 0; i++) {
      await sleep(100)
      onVictim = (await victim.health()).in_flight.streams
    }
    t.ok(onVictim >= 1, `streams in flight on the victim before the kill: ${onVictim}`)

    const own = (await victim.health()).in_flight
    const killedAt = performance.now()
    victim.process.child.kill('SIGKILL')
    await victim.process.exited
    await sleep(2_000)
    await Promise.all([streams.stop(), slow.stop(), load.stop()])

    const route = routes()
    const everything = [...load.results, ...streams.results, ...slow.results].filter(result => result.endedAt > killedAt - 5_000)
    const inFlight = everything.filter(result => result.startedAt < killedAt && result.endedAt > killedAt && route.get(result.id)?.[0] === victimHost)
    const failed = everything.filter(result => result.status !== 200 || result.error !== undefined)
    const moved = everything.filter(result => (route.get(result.id) ?? []).length > 1)
    const replayed = inFlight.filter(result => result.status === 200 && result.error === undefined)
    const after = everything.filter(result => result.startedAt > killedAt)
    const inFlightIds = new Set(inFlight.map(result => result.id))
    const kinds = (results: Sent[]) => ['load', 'slow', 'stream'].map(kind => `${results.filter(result => result.kind === kind).length} ${kind}`).join(', ')
    t.comment(`kill -9 of ${victim.host}: ${inFlight.length} request(s) in flight on it (${kinds(inFlight)}; its /health said ${own.requests}, ${own.streams} streams, just before); ${failed.length} failed (${kinds(failed)}: ` +
      `${[...new Set(failed.map(result => `${result.status} ${result.error ?? ''}`.trim()))].join('; ') || 'none'}); ${replayed.length} of those in flight were replayed by nginx ` +
      `on another replica and succeeded; nginx moved ${moved.length} request(s) in all from the dead address; ${after.length} sent after the kill, all to the others`)
    t.ok(inFlight.length >= 1, 'requests were in flight on the killed replica')
    t.same(failed.filter(result => !inFlightIds.has(result.id)).map(result => result.id), [], 'every failed request was in flight on the killed replica')
    t.ok(failed.length <= inFlight.length, `failed ${failed.length} ≤ in flight on it ${inFlight.length}`)
    t.ok(after.length >= 20 && after.every(result => result.status === 200 && result.error === undefined), `every request sent after the kill succeeded (${after.length})`)
    const servedAfter = after.map(result => route.get(result.id)?.at(-1))
    t.notOk(servedAfter.includes(victimHost), 'none of them was answered by the killed replica')
    t.ok(replicas.filter(replica => replica !== victim).every(replica => replica.alive()), 'the other replicas run on')
  })
})

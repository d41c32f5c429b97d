import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, postJson, user } from '../helper.ts'
import { spawnGateway } from '../process-helper.ts'
import { skipWithout, startRedis } from '../integration/servers.ts'
import { startSimulator, type RecordedRequest } from '../simulator/index.ts'

// Two gateway processes and one real redis-server: the replicas of a `docker compose up`, on loopback.
const skip = skipWithout('redis-server')
const chat = { model: 'qwen-plus', messages: user('hi') }
const keyOf = (request: RecordedRequest) => String(request.headers.authorization).replace('Bearer ', '')

async function statusOf (url: string, body: object, headers: Record<string, string> = {}) {
  const res = await postJson(url, body, headers)
  await res.text()
  return res.status
}

t.test('two replicas share one request budget and one token budget', { skip }, async t => {
  const redis = await startRedis(t)
  const sim = await startSimulator()
  t.after(() => sim.close())
  const env = { DASHSCOPE_BASE_URL: sim.url, REDIS_URL: redis.url, GATEWAY_API_KEYS: 'shared-client-key', RATE_LIMIT_RPM: '4', LOG_LEVEL: 'info' }
  const [a, b] = await Promise.all([spawnGateway(t, env), spawnGateway(t, env)])
  const auth = { authorization: 'Bearer shared-client-key' }
  const statuses = []
  for (const gateway of [a, b, a, b, a, b]) statuses.push(await statusOf(`${gateway.baseURL}/chat/completions`, chat, auth))
  t.same(statuses, [200, 200, 200, 200, 429, 429], 'four requests per minute across both replicas')

  // Each request reserves its prompt estimate plus max_tokens (about 40 tokens) and is settled at its real 25.
  const costly = { ...chat, max_tokens: 10, sim: { usage: { prompt_tokens: 15, completion_tokens: 10 } } }
  const reserve = Math.ceil(Buffer.byteLength(JSON.stringify(costly)) / 4) + 10
  const tokenEnv = { ...env, RATE_LIMIT_RPM: '0', RATE_LIMIT_TPM: String(50 + reserve - 1), GATEWAY_API_KEYS: 'token-client-key' }
  const [c, d] = await Promise.all([spawnGateway(t, tokenEnv), spawnGateway(t, tokenEnv)])
  const tokenAuth = { authorization: 'Bearer token-client-key' }
  t.equal(await statusOf(`${c.baseURL}/chat/completions`, costly, tokenAuth), 200)
  t.equal(await statusOf(`${d.baseURL}/chat/completions`, costly, tokenAuth), 200, '25 tokens used, on the other replica')
  t.equal(await statusOf(`${c.baseURL}/chat/completions`, costly, tokenAuth), 429, '50 used across both: the next reservation does not fit')

  // Concurrent requests on both replicas: the reservations are atomic in Redis, so only what fits gets through.
  const burstEnv = { ...env, RATE_LIMIT_RPM: '0', RATE_LIMIT_TPM: '1000', GATEWAY_API_KEYS: 'burst-client-key' }
  const [e, f] = await Promise.all([spawnGateway(t, burstEnv), spawnGateway(t, burstEnv)])
  const burstAuth = { authorization: 'Bearer burst-client-key' }
  const upstreamBefore = sim.requests.length
  const burst = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    statusOf(`${(i % 2 ? e : f).baseURL}/chat/completions`, { ...chat, max_tokens: 300, sim: { ttfbMs: 100 } }, burstAuth)))
  t.equal(burst.filter(status => status === 200).length, 3, `three of twelve admitted across both replicas: ${burst.join(', ')}`)
  t.equal(sim.requests.length - upstreamBefore, 3)
})

t.test('a key that cools down on one replica is avoided by the other', { skip }, async t => {
  const redis = await startRedis(t)
  const sim = await startSimulator({ apiKeys: ['sk-a', 'sk-b'] })
  t.after(() => sim.close())
  sim.setOverride(request => keyOf(request) === 'sk-a' ? { error: 'limit_requests', retryAfter: 30 } : undefined)
  const env = { DASHSCOPE_BASE_URL: sim.url, DASHSCOPE_API_KEY: 'sk-a,sk-b', REDIS_URL: redis.url, LOG_LEVEL: 'info' }
  const [a, b] = await Promise.all([spawnGateway(t, env), spawnGateway(t, env)])
  // Conversations stick to a key (rendezvous hashing): different ones on A until one lands on sk-a (the first ten of
  // these all hash to sk-b since sessions digest a sample of the first message).
  const conversation = (i: number) => ({ model: 'qwen-plus', messages: user(`conversation ${i}`) })
  let asked = 0
  for (; asked < 30 && !sim.requests.some(request => keyOf(request) === 'sk-a'); asked++) {
    t.equal(await statusOf(`${a.baseURL}/chat/completions`, conversation(asked)), 200)
  }
  const triedOnA = sim.requests.filter(request => keyOf(request) === 'sk-a').length
  t.equal(triedOnA, 1, 'replica A met the 429 once')
  await sleep(100) // the cooldown travels through Redis pub/sub
  // The same conversations on B, the one that met the 429 on A among them.
  for (let i = 0; i < asked; i++) t.equal(await statusOf(`${b.baseURL}/chat/completions`, conversation(i)), 200)
  t.equal(sim.requests.filter(request => keyOf(request) === 'sk-a').length, triedOnA, 'replica B never tried the cooling key')
  const health = (await (await fetch(`${b.origin}/health`)).json()) as any
  t.match(health.upstreams[0].keys[0], { key: 'key-1', models: [{ model: 'qwen-plus', state: 'cooling', reason: 'rate_limited' }] })
  t.same(health.shared_state, { store: 'redis', available: true })

  const late = await spawnGateway(t, env)
  const lateHealth = (await (await fetch(`${late.origin}/health`)).json()) as any
  t.match(lateHealth.upstreams[0].keys[0].models, [{ model: 'qwen-plus', state: 'cooling' }], 'a replica started later loads the cooldowns in force')
})

t.test('backoff grows across replicas, and a success undoes only what came before it', { skip }, async t => {
  const redis = await startRedis(t)
  const sim = await startSimulator()
  t.after(() => sim.close())
  let limited = true
  sim.setOverride(() => limited ? { error: 'limit_requests' } : undefined)
  const env = { DASHSCOPE_BASE_URL: sim.url, DASHSCOPE_API_KEY: 'sk-a', REDIS_URL: redis.url, UPSTREAM_MAX_ATTEMPTS: '1', LOG_LEVEL: 'info' }
  const [a, b] = await Promise.all([spawnGateway(t, env), spawnGateway(t, env)])
  const penaltyOn = async (origin: string) => ((await (await fetch(`${origin}/health`)).json()) as any).upstreams[0].keys[0].models[0]

  t.equal(await statusOf(`${a.baseURL}/chat/completions`, chat), 429)
  const first = await penaltyOn(a.origin)
  t.equal(first.failures, 1)
  await sleep(first.retry_in_seconds * 1000 + 100)
  t.equal(await statusOf(`${b.baseURL}/chat/completions`, chat), 429, 'the other replica meets the next 429')
  t.equal((await penaltyOn(b.origin)).failures, 2, 'and backs off further: it knew of the first')
  await sleep(100)
  t.equal((await penaltyOn(a.origin)).failures, 2, 'the first replica learns of the second')

  const second = await penaltyOn(a.origin)
  await sleep(second.retry_in_seconds * 1000 + 100)
  limited = false
  t.equal(await statusOf(`${a.baseURL}/chat/completions`, chat), 200)
  await sleep(100)
  t.equal(await penaltyOn(b.origin), undefined, 'a success that began after the penalty clears it everywhere')
})

t.test('when Redis goes away the gateway keeps serving, says so, and limits fail open', { skip }, async t => {
  const redis = await startRedis(t)
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, REDIS_URL: redis.url, GATEWAY_API_KEYS: 'client-key-x', RATE_LIMIT_RPM: '2', RATE_LIMIT_TPM: '10000', LOG_LEVEL: 'info' })
  const auth = { authorization: 'Bearer client-key-x' }
  t.equal(await statusOf(`${gateway.baseURL}/chat/completions`, chat, auth), 200)
  await redis.stop()
  await sleep(200)
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push(await statusOf(`${gateway.baseURL}/chat/completions`, chat, auth))
  t.same(statuses, [200, 200, 200, 200], 'served, over the limit: fail open')
  const health = (await (await fetch(`${gateway.origin}/health`, { headers: auth })).json()) as any
  t.same(health.shared_state, { store: 'redis', available: false })
  const ready = await fetch(`${gateway.origin}/health/ready`)
  t.equal(ready.status, 200, 'still ready: it serves, and Redis is shared by every replica (all unready would be an outage)')
  t.match(await ready.json(), { status: 'ready', checks: { upstream_keys: true, shared_state: false } }, 'and says Redis is away')
  const logs = await gateway.waitForOutput(/Redis unavailable: rate limits fail open/)
  t.equal(logs.split('Redis unavailable').length - 1, 1, 'logged once per outage, not per request')
})

t.test('a gateway whose Redis never answered still closes', async t => {
  const app = await build(t, { REDIS_URL: 'redis://127.0.0.1:9', DASHSCOPE_BASE_URL: 'http://127.0.0.1:9/v1' })
  const closed = await Promise.race([app.close().then(() => true), sleep(3000).then(() => false)])
  t.ok(closed, 'app.close() returned')
})

t.test('a gateway whose Redis is down at start still starts', { skip }, async t => {
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, REDIS_URL: 'redis://127.0.0.1:9', LOG_LEVEL: 'info' })
  t.equal(await statusOf(`${gateway.baseURL}/chat/completions`, chat), 200)
})

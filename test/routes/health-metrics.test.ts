import t from 'tap'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pkg from '../../package.json' with { type: 'json' }
import { build, payloads, postJson, readEvents, startStack, user } from '../helper.ts'

/** A response body as JSON, typed loosely: the tests check its shape themselves. */
const readJson = async (res: Response): Promise<any> => res.json()

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The samples of a Prometheus text exposition, comments left out. */
function parseMetrics (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line)
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value
    samples.push({ name: match[1], labels, value: Number(match[3]) })
  }
  return samples
}

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter(sample => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))

const total = (samples: Sample[]) => samples.reduce((sum, sample) => sum + sample.value, 0)

async function scrape (origin: string) {
  const res = await fetch(`${origin}/metrics`)
  const text = await res.text()
  return { res, text, samples: parseMetrics(text) }
}

/** Polls until `check` holds, for in-flight counters that settle when a socket closes. */
async function eventually<T> (read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 2000): Promise<T> {
  const until = performance.now() + timeoutMs
  let value = await read()
  while (!check(value) && performance.now() < until) {
    await sleep(10)
    value = await read()
  }
  return value
}

t.test('/health with a client key: status, version, uptime, upstream host and key count, never the keys', async t => {
  const upstreamKeys = ['sk-aaa', 'sk-bbb']
  const clientKey = 'ck-health-client-key-7f3a'
  const { sim, origin, baseURL } = await startStack(t, {
    sim: { apiKeys: upstreamKeys },
    env: { DASHSCOPE_API_KEY: upstreamKeys.join(','), GATEWAY_API_KEYS: clientKey }
  })
  // The keys work upstream, so the gateway really holds them.
  const chat = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') }, { authorization: `Bearer ${clientKey}` })
  t.equal(chat.status, 200, 'the upstream accepted the gateway\'s key')

  const res = await fetch(`${origin}/health`, { headers: { authorization: `Bearer ${clientKey}` } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const text = await res.text()
  const health = JSON.parse(text)
  t.equal(health.status, 'ok')
  t.equal(health.version, pkg.version)
  t.type(health.uptime_seconds, 'number')
  t.ok(health.uptime_seconds >= 0)
  t.equal(health.upstream.host, new URL(sim.url).host, 'the upstream base URL\'s host')
  t.equal(health.upstream.api_keys, 2)
  t.notOk('warning' in health.upstream, 'no warning when keys are set')
  t.same(health.in_flight, { requests: 1, streams: 0 }, 'only the /health request itself is in flight')
  for (const secret of [...upstreamKeys, clientKey]) t.notOk(text.includes(secret), `${secret} is not in /health`)
  t.notOk(/sk-/.test(text), 'nothing that looks like a key')

  const upstreamCalls = sim.requests.length
  await fetch(`${origin}/health`)
  t.equal(sim.requests.length, upstreamCalls, '/health makes no upstream call')
})

t.test('/health without a client key tells outsiders only ok or degraded; /health/live and /health/ready need no key', async t => {
  const clientKey = 'ck-operator-key-0001'
  const app = await build(t, { DASHSCOPE_API_KEY: 'sk-upstream-secret', GATEWAY_API_KEYS: clientKey })
  for (const headers of [{}, { authorization: 'Bearer ck-wrong' }, { 'x-api-key': 'ck-wrong' }]) {
    const res = await app.inject({ method: 'GET', url: '/health', headers })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'ok' }, 'no version, hosts, keys or Redis state for outsiders')
  }
  for (const headers of [{ authorization: `Bearer ${clientKey}` }, { 'x-api-key': clientKey }]) {
    const full = (await app.inject({ method: 'GET', url: '/health', headers })).json()
    t.match(full, { status: 'ok', upstream: { api_keys: 1 }, shared_state: { store: 'memory' } }, 'the operator\'s view with a client key')
  }
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', checks: { upstream_keys: true, shared_state: true } })
  for (const res of [live, ready]) t.notMatch(res.body, /sk-upstream|127\.0\.0\.1|dashscope/)
})

t.test('/health/ready says not_ready (503) while an upstream has no usable key', async t => {
  const { baseURL, origin } = await startStack(t, { sim: { apiKeys: ['sk-right'] }, env: { DASHSCOPE_API_KEY: 'sk-wrong' } })
  t.equal((await fetch(`${origin}/health/ready`)).status, 200, 'ready at start')
  t.equal((await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') })).status, 401)
  const ready = await fetch(`${origin}/health/ready`)
  t.equal(ready.status, 503)
  t.same(await ready.json(), { status: 'not_ready', checks: { upstream_keys: false, shared_state: true } })
  t.equal((await fetch(`${origin}/health/live`)).status, 200, 'yet alive: restarting would not help')
})

t.test('/health without an upstream key says so', async t => {
  const app = await build(t, { DASHSCOPE_BASE_URL: 'http://127.0.0.1:9/v1' })
  const res = await app.inject({ method: 'GET', url: '/health' })
  t.equal(res.statusCode, 200)
  const health = res.json()
  t.equal(health.status, 'ok')
  t.equal(health.upstream.host, '127.0.0.1:9')
  t.equal(health.upstream.api_keys, 0)
  t.type(health.upstream.warning, 'string')
})

t.test('/health counts a running stream in flight, and not after it ended', async t => {
  const { sim, origin, baseURL } = await startStack(t)
  const health = async () => readJson(await fetch(`${origin}/health`))

  const res = await postJson(`${baseURL}/chat/completions`, {
    model: 'qwen-plus',
    messages: user('go slowly'),
    stream: true,
    sim: { reply: 'one two three four five six seven eight', intervalMs: 60 }
  })
  t.equal(res.status, 200)
  const reading = readEvents(res)
  const upstream = await sim.waitFor('request')

  const during = await eventually(health, value => value.in_flight.streams === 1)
  t.equal(during.in_flight.streams, 1, 'one stream in flight')
  t.ok(during.in_flight.requests >= 2, 'the stream and this /health request are in flight')
  t.equal(upstream.finishedAt, undefined, 'the upstream was still streaming')

  const events = await reading
  t.equal(events.at(-1)?.data, '[DONE]')
  const after = await eventually(health, value => value.in_flight.streams === 0 && value.in_flight.requests === 1)
  t.same(after.in_flight, { requests: 1, streams: 0 }, 'nothing in flight once the stream ended')
})

t.test('/metrics: route templates, tokens, time to first token, upstream latency and errors', async t => {
  const { origin, baseURL } = await startStack(t)

  const json = await postJson(`${baseURL}/chat/completions`, {
    model: 'qwen-plus', messages: user('hello'), sim: { usage: { prompt_tokens: 21, completion_tokens: 13 } }
  })
  t.equal(json.status, 200)
  const answer = await readJson(json)
  t.same([answer.usage.prompt_tokens, answer.usage.completion_tokens], [21, 13])

  const stream = await postJson(`${baseURL}/chat/completions`, {
    model: 'qwen-plus',
    messages: user('hello again'),
    stream: true,
    stream_options: { include_usage: true },
    sim: { usage: { prompt_tokens: 5, completion_tokens: 7 } }
  })
  const usageChunk = payloads(await readEvents(stream)).find(chunk => chunk.usage)
  t.same([usageChunk.usage.prompt_tokens, usageChunk.usage.completion_tokens], [5, 7])

  t.equal((await fetch(`${baseURL}/models/qwen-plus`)).status, 200)
  const limited = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), sim: { error: 'limit_requests' } })
  t.equal(limited.status, 429)
  await limited.text()

  const { res, text } = await eventually(() => scrape(origin), ({ samples }) =>
    total(find(samples, 'qwen_gateway_streams_in_flight')) === 0 &&
    find(samples, 'http_request_duration_seconds_count', { route: '/v1/chat/completions', status_code: '429' }).length === 1)
  const samples = parseMetrics(text)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain/)
  t.match(text, /^# (HELP|TYPE) /m)

  // HTTP duration by route template.
  t.equal(total(find(samples, 'http_request_duration_seconds_count', { method: 'POST', route: '/v1/chat/completions', status_code: '200' })), 2,
    'the JSON and the streamed chat request')
  t.ok(find(samples, 'http_request_duration_seconds_bucket', { route: '/v1/chat/completions' }).length > 0, 'a histogram')
  t.equal(total(find(samples, 'http_request_duration_seconds_count', { method: 'GET', route: '/v1/models/*' })), 1, 'the template, not the URL')
  t.notOk(text.includes('/v1/models/qwen-plus'), 'no raw URL in any label')
  const routes = new Set(find(samples, 'http_request_duration_seconds_count').map(sample => sample.labels.route))
  for (const route of routes) t.ok(['/health', '/v1/models', '/v1/models/*', '/v1/chat/completions', '/v1/completions'].includes(route), `route label ${route} is a template`)

  // Process metrics are on too.
  t.ok(find(samples, 'process_cpu_user_seconds_total').length === 1, 'process metrics')

  // Tokens: the upstream's numbers, by model and type.
  t.equal(total(find(samples, 'qwen_gateway_tokens_total', { model: 'qwen-plus', type: 'prompt' })), 26, 'prompt tokens 21 + 5')
  t.equal(total(find(samples, 'qwen_gateway_tokens_total', { model: 'qwen-plus', type: 'completion' })), 20, 'completion tokens 13 + 7')

  // Time to first token: a histogram with the stream in it.
  t.ok(total(find(samples, 'qwen_gateway_time_to_first_token_seconds_count', { model: 'qwen-plus' })) >= 1, 'time to first token observed')
  t.ok(find(samples, 'qwen_gateway_time_to_first_token_seconds_bucket').length > 0, 'time to first token is a histogram')

  // Upstream latency and errors.
  t.ok(total(find(samples, 'qwen_gateway_upstream_request_duration_seconds_count', { model: 'qwen-plus' })) >= 2, 'upstream durations observed')
  t.ok(find(samples, 'qwen_gateway_upstream_request_duration_seconds_bucket').length > 0, 'upstream duration is a histogram')
  t.equal(total(find(samples, 'qwen_gateway_upstream_errors_total', { status: '429' })), 1, 'the 429 counted by status')

  // Streams in flight: present, and back to zero.
  const streams = find(samples, 'qwen_gateway_streams_in_flight')
  t.equal(streams.length, 1, 'streams in flight gauge')
  t.equal(streams[0]?.value, 0)
})

t.test('/metrics counts legacy completions too', async t => {
  const { origin, baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/completions`, { model: 'qwen-flash', prompt: 'hi', sim: { usage: { prompt_tokens: 4, completion_tokens: 6 } } })
  t.equal(res.status, 200)
  await readJson(res)
  const { samples } = await scrape(origin)
  t.equal(total(find(samples, 'http_request_duration_seconds_count', { route: '/v1/completions', status_code: '200' })), 1)
  t.equal(total(find(samples, 'qwen_gateway_tokens_total', { model: 'qwen-flash', type: 'prompt' })), 4)
  t.equal(total(find(samples, 'qwen_gateway_tokens_total', { model: 'qwen-flash', type: 'completion' })), 6)
})

t.test('a flood of unknown model names does not create metric series', async t => {
  const { origin, baseURL } = await startStack(t, { sim: { strictModels: true } })
  const names = Array.from({ length: 50 }, () => `zzmodel-${randomBytes(6).toString('hex')}`)
  const answers = await Promise.all(names.map(async (model, i) => {
    const res = i % 2 === 0
      ? await postJson(`${baseURL}/chat/completions`, { model, messages: user('hi'), stream: i % 4 === 0 })
      : await postJson(`${baseURL}/completions`, { model, prompt: 'hi' })
    await res.arrayBuffer()
    return res.status
  }))
  t.same(answers, names.map(() => 404), 'every unknown model got a 404')
  // Unknown ids in the URL, and unknown URLs, must not become labels either.
  for (const name of names.slice(0, 10)) {
    t.equal((await fetch(`${baseURL}/models/${name}`)).status, 404)
    t.equal((await fetch(`${origin}/${name}`)).status, 404)
  }

  const { text, samples } = await scrape(origin)
  const leaked = names.filter(name => text.includes(name))
  t.same(leaked, [], 'no metric line contains an unknown model name')
  t.ok(find(samples, 'qwen_gateway_upstream_request_duration_seconds_count', { model: 'other' }).length > 0, 'counted as model="other"')
  t.equal(total(find(samples, 'qwen_gateway_upstream_request_duration_seconds_count', { model: 'other' })), 50)
  const modelLabels = new Set(samples.filter(sample => 'model' in sample.labels).map(sample => sample.labels.model))
  t.same([...modelLabels], ['other'], 'the only model label is other')
  t.equal(total(find(samples, 'qwen_gateway_upstream_errors_total', { status: '404' })), 50)
})

t.test('no upstream key or client key ever appears in /metrics', async t => {
  const upstreamKeys = ['sk-metrics-upstream-one-4c1d', 'sk-metrics-upstream-two-9e2b']
  const clientKey = 'ck-metrics-client-key-5a6f'
  const { origin, baseURL } = await startStack(t, {
    sim: { apiKeys: upstreamKeys },
    env: { DASHSCOPE_API_KEY: upstreamKeys.join(','), GATEWAY_API_KEYS: clientKey }
  })
  const auth = { authorization: `Bearer ${clientKey}` }
  t.equal((await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') }, auth)).status, 200)
  const streamed = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), stream: true }, auth)
  await readEvents(streamed)
  t.equal((await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: 'hi' }, auth)).status, 200)
  t.equal((await fetch(`${baseURL}/models`, { headers: auth })).status, 200)
  t.equal((await fetch(`${baseURL}/models`, { headers: { authorization: 'Bearer ck-some-wrong-key-1234' } })).status, 401)
  t.equal((await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), sim: { error: 'invalid_api_key' } }, auth)).status, 401)

  const { text } = await scrape(origin)
  for (const secret of [...upstreamKeys, clientKey, 'ck-some-wrong-key-1234']) t.notOk(text.includes(secret), `${secret} is not in /metrics`)
  t.notOk(/Bearer/i.test(text), 'no authorization header value')
  const health = await (await fetch(`${origin}/health`)).text()
  for (const secret of [...upstreamKeys, clientKey]) t.notOk(health.includes(secret), `${secret} is not in /health`)
})

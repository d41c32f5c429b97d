import t from 'tap'
import { payloads, postJson, readEvents, startStack, user } from '../helper.ts'

const chat = (sim: object, extra: object = {}) => ({ model: 'qwen-plus', messages: user('x'), sim, ...extra })

// Every DashScope error shape keeps its status and becomes OpenAI's envelope (wire contract §1.8).
const cases: Array<[string, number, string | null, string]> = [
  ['invalid_api_key', 401, 'invalid_api_key', 'false'],
  ['invalid_api_key_unwrapped', 401, 'InvalidApiKey', 'false'],
  ['access_denied', 403, null, 'false'],
  ['limit_requests', 429, 'limit_requests', 'true'],
  ['rate_quota', 429, 'Throttling.RateQuota', 'true'],
  ['allocation_quota', 429, null, 'false'],
  ['allocation_quota_unwrapped', 429, null, 'false'],
  ['data_inspection_failed', 400, 'data_inspection_failed', 'false'],
  ['arrearage', 400, 'Arrearage', 'false'],
  ['context_overflow', 400, null, 'false'],
  ['model_not_found', 404, 'model_not_found', 'false'],
  ['internal_error', 500, null, 'true'],
  ['bad_gateway_html', 502, null, 'true'],
  ['service_unavailable_html', 503, null, 'true']
]

t.test('upstream errors keep their status and arrive in the envelope, streamed or not', async t => {
  const { baseURL } = await startStack(t)
  for (const [name, status, code, shouldRetry] of cases) {
    for (const stream of [false, true]) {
      const res = await postJson(`${baseURL}/chat/completions`, chat({ error: name }, { stream }))
      const label = `${name}${stream ? ' (stream)' : ''}`
      t.equal(res.status, status, label)
      t.match(res.headers.get('content-type'), /^application\/json/, label)
      t.equal(res.headers.get('x-gateway-error-source'), 'upstream', label)
      t.equal(res.headers.get('x-should-retry'), shouldRetry, label)
      const text = await res.text()
      t.notMatch(text, /<html|<body/i, `${label}: no HTML`)
      const { error } = JSON.parse(text)
      t.same(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], label)
      t.ok(error.message.length > 0, label)
      if (code) t.match(error.code, code, label)
    }
  }
})

t.test('an unknown model: the upstream\'s 404 reads as GET /v1/models/{model} does, naming the model', async t => {
  const { baseURL } = await startStack(t)
  for (const stream of [false, true]) {
    const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-nope', messages: user('x'), stream })
    t.equal(res.status, 404)
    t.equal(res.headers.get('x-gateway-error-source'), 'upstream')
    t.same((await res.json() as any).error, {
      message: "The model 'qwen-nope' does not exist or is not served by this gateway. GET /v1/models lists the models it serves.",
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_found'
    }, stream ? 'streamed' : 'answered')
  }
})

t.test('a client can tell the upstream refusing the gateway\'s key from its own bad key', async t => {
  const { baseURL } = await startStack(t, { sim: { apiKeys: ['sk-upstream-right'] }, env: { DASHSCOPE_API_KEY: 'sk-upstream-wrong', GATEWAY_API_KEYS: 'client-key' } })
  const own = await postJson(`${baseURL}/chat/completions`, chat({}), { authorization: 'Bearer not-a-client-key' })
  t.equal(own.status, 401)
  t.equal(own.headers.get('x-gateway-error-source'), 'gateway')
  t.match((await own.json() as any).error.message, /API key for this gateway/)

  const upstream = await postJson(`${baseURL}/chat/completions`, chat({}), { authorization: 'Bearer client-key' })
  t.equal(upstream.status, 401)
  t.equal(upstream.headers.get('x-gateway-error-source'), 'upstream')
  const text = await upstream.text()
  t.match(JSON.parse(text).error.message, /upstream .* rejected the gateway's credentials/)
  t.notMatch(text, /sk-upstream/, 'no key in the answer')
})

t.test('with no upstream key the gateway still serves, and the refusal says why', async t => {
  const { baseURL, origin } = await startStack(t, { sim: { apiKeys: ['sk-needed'] } })
  const health = await (await fetch(`${origin}/health`)).json() as any
  t.equal(health.upstream.api_keys, 0)
  const res = await postJson(`${baseURL}/chat/completions`, chat({}))
  t.equal(res.status, 401)
  t.match((await res.json() as any).error.message, /no DASHSCOPE_API_KEY/)
})

t.test('an unreachable upstream is a 502, a silent one a 504', async t => {
  // Port 9 (discard): nothing listens there. A port freed by a closed server could be taken again by a test running
  // in parallel.
  const unreachable = await startStack(t, { env: { DASHSCOPE_BASE_URL: 'http://127.0.0.1:9/v1' } })
  for (const stream of [false, true]) {
    const res = await postJson(`${unreachable.baseURL}/chat/completions`, chat({}, { stream }))
    t.equal(res.status, 502)
    t.equal((await res.json() as any).error.code, 'upstream_unreachable')
  }

  const slow = await startStack(t, { env: { UPSTREAM_HEADERS_TIMEOUT_MS: '200' } })
  for (const stream of [false, true]) {
    const res = await postJson(`${slow.baseURL}/chat/completions`, chat({ stall: 'headers' }, { stream }))
    t.equal(res.status, 504)
    t.equal((await res.json() as any).error.code, 'upstream_timeout')
  }

  const reset = await postJson(`${slow.baseURL}/chat/completions`, chat({ resetBeforeHeaders: true }))
  t.equal(reset.status, 502)
})

t.test('errors after the stream began are one error event, then a clean close without [DONE]', async t => {
  const { baseURL } = await startStack(t, { env: { UPSTREAM_BODY_TIMEOUT_MS: '300' } })
  const scenarios: Array<[object, string]> = [
    [{ midStream: 'inspection' }, 'data_inspection_failed'],
    [{ midStream: 'event_error' }, 'Throttling.AllocationQuota'],
    [{ midStream: 'reset' }, 'upstream_connection_lost'],
    [{ stall: 'after_first' }, 'upstream_timeout']
  ]
  for (const [sim, code] of scenarios) {
    const res = await postJson(`${baseURL}/chat/completions`, chat(sim, { stream: true }))
    t.equal(res.status, 200)
    const events = await readEvents(res)
    const last = events.at(-1)!
    t.notOk(events.some(event => event.data === '[DONE]'), `${code}: no [DONE]`)
    t.notOk(events.some(event => event.event), `${code}: no event: lines`)
    const { error } = JSON.parse(last.data)
    t.equal(error.code, code)
    t.same(Object.keys(error).sort(), ['code', 'message', 'param', 'type'])
    t.equal(payloads(events.slice(0, -1)).every(chunk => Array.isArray(chunk.choices)), true, `${code}: chunks before the error are ordinary chunks`)
  }
})

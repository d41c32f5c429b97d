import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { serverOptions } from '../../src/server-options.ts'
import { postJson, startStack, user } from '../helper.ts'

const chat = (extra: object = {}) => ({ model: 'qwen-plus', messages: user('hi'), ...extra })
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

t.test('requests per minute per client key, with OpenAI\'s rate-limit headers', async t => {
  const { baseURL } = await startStack(t, { env: { GATEWAY_API_KEYS: 'client-one,client-two', RATE_LIMIT_RPM: '3' } })
  for (let i = 0; i < 3; i++) {
    const res = await postJson(`${baseURL}/chat/completions`, chat(), bearer('client-one'))
    t.equal(res.status, 200)
    t.equal(res.headers.get('x-ratelimit-limit-requests'), '3')
    t.equal(res.headers.get('x-ratelimit-remaining-requests'), String(2 - i))
    t.match(res.headers.get('x-ratelimit-reset-requests'), /^\d+s$/)
    await res.text()
  }
  const limited = await postJson(`${baseURL}/chat/completions`, chat(), bearer('client-one'))
  t.equal(limited.status, 429)
  const retryAfter = Number(limited.headers.get('retry-after'))
  t.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`)
  t.equal(limited.headers.get('x-ratelimit-remaining-requests'), '0')
  t.equal(limited.headers.get('x-gateway-error-source'), 'gateway')
  const { error } = (await limited.json()) as any
  t.match(error, { type: 'requests', code: 'rate_limit_exceeded' })
  t.match(error.message, /3 requests per minute/)
  t.notMatch(error.message, /client-one/, 'the key is not echoed')

  const other = await postJson(`${baseURL}/chat/completions`, chat(), bearer('client-two'))
  t.equal(other.status, 200, 'each key has its own budget')
  await other.text()
})

t.test('tokens are reserved at admission (prompt estimate + max_tokens) and settled with the real usage, streams included', async t => {
  const { baseURL } = await startStack(t, { env: { GATEWAY_API_KEYS: 'client-one', RATE_LIMIT_TPM: '200' } })
  const usage = { prompt_tokens: 20, completion_tokens: 10 }
  // One token per four bytes of the request, plus its max_tokens.
  const reserveOf = (body: object) => Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4) + 50
  const send = async (body: object) => {
    const res = await postJson(`${baseURL}/chat/completions`, body, bearer('client-one'))
    await res.text()
    return { status: res.status, remaining: Number(res.headers.get('x-ratelimit-remaining-tokens')), limit: res.headers.get('x-ratelimit-limit-tokens') }
  }

  const json = chat({ max_tokens: 50, sim: { usage } })
  const first = await send(json)
  t.match(first, { status: 200, limit: '200' })
  t.equal(first.remaining, 200 - reserveOf(json), 'the reservation counts at once')

  const streamed = chat({ max_tokens: 50, stream: true, sim: { usage } })
  const second = await send(streamed)
  t.equal(second.remaining, 200 - 30 - reserveOf(streamed), 'the first answer was settled at its real 30 tokens')

  const plain = chat({ max_tokens: 50 })
  const third = await send(plain)
  t.equal(third.remaining, 200 - 30 - 30 - reserveOf(plain), 'the stream was settled at its real 30 tokens too')
})

t.test('concurrent requests cannot all slip under the token budget', async t => {
  const { baseURL, origin, sim } = await startStack(t, { env: { GATEWAY_API_KEYS: 'client-one', RATE_LIMIT_TPM: '1000' } })
  // Each may use up to 300 tokens: at most three fit into 1,000, however fast they arrive.
  const burst = await Promise.all(Array.from({ length: 10 }, () =>
    postJson(`${baseURL}/chat/completions`, chat({ max_tokens: 300, sim: { ttfbMs: 100 } }), bearer('client-one')).then(async res => {
      await res.text()
      return res.status
    })))
  t.equal(burst.filter(status => status === 200).length, 3, `three admitted: ${burst.join(', ')}`)
  t.equal(burst.filter(status => status === 429).length, 7)
  t.equal(sim.requests.length, 3, 'the others never reached the upstream')
  t.match(await (await fetch(`${origin}/metrics`)).text(), /^qwen_gateway_rate_limited_total\{limit="tokens"\} 7$/m)
})

t.test('a legacy request counts each prompt: 128 prompts cannot pass a small budget', async t => {
  const { baseURL, sim } = await startStack(t, { env: { GATEWAY_API_KEYS: 'client-one', RATE_LIMIT_TPM: '5000', RATE_LIMIT_RPM: '200' } })
  const prompts = Array.from({ length: 128 }, (_, i) => `prompt number ${i}`)
  const big = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: prompts, max_tokens: 100 }, bearer('client-one'))
  t.equal(big.status, 429)
  t.equal(big.headers.get('x-should-retry'), 'false', 'waiting would not help: the request alone is over the budget')
  t.match(((await big.json()) as any).error, { type: 'tokens', code: 'rate_limit_exceeded', message: /Request too large for key-1: it needs 1\d{4} tokens/ })
  t.equal(sim.requests.length, 0)

  const fits = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: prompts.slice(0, 10), max_tokens: 100 }, bearer('client-one'))
  t.equal(fits.status, 200, 'ten prompts fit')
  t.equal(fits.headers.get('x-ratelimit-remaining-requests'), '190', 'and count as ten requests')
  await fits.text()
})

t.test('a request refused upstream gives its reservation back', async t => {
  const { baseURL } = await startStack(t, { env: { GATEWAY_API_KEYS: 'client-one', RATE_LIMIT_TPM: '400' } })
  for (let i = 0; i < 5; i++) {
    const res = await postJson(`${baseURL}/chat/completions`, chat({ max_tokens: 300, sim: { error: 'context_overflow' } }), bearer('client-one'))
    t.equal(res.status, 400, `refused upstream ${i + 1}: not a 429`)
    await res.text()
  }
})

t.test('named clients in the config file carry their own limits', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-clients-'))
  const file = join(dir, 'gateway.json')
  writeFileSync(file, JSON.stringify({
    clients: [
      { name: 'roo', key: 'roo-key-123456', requests_per_minute: 2 },
      { name: 'ci', key_env: 'TEST_CI_KEY' }
    ]
  }))
  const { baseURL } = await startStack(t, { env: { GATEWAY_CONFIG: file, TEST_CI_KEY: 'ci-key-abcdef' } })
  const statuses = []
  for (let i = 0; i < 3; i++) {
    const res = await postJson(`${baseURL}/chat/completions`, chat(), bearer('roo-key-123456'))
    statuses.push(res.status)
    await res.text()
  }
  t.same(statuses, [200, 200, 429])
  for (let i = 0; i < 3; i++) {
    const res = await postJson(`${baseURL}/chat/completions`, chat(), bearer('ci-key-abcdef'))
    t.equal(res.status, 200, 'no limit for ci')
    t.equal(res.headers.get('x-ratelimit-limit-requests'), null)
    await res.text()
  }
  const wrong = await postJson(`${baseURL}/chat/completions`, chat(), bearer('nope-nope-nope'))
  t.equal(wrong.status, 401)
})

t.test('an open gateway limits per client address', async t => {
  const { baseURL } = await startStack(t, { env: { RATE_LIMIT_RPM: '1' } })
  t.equal((await postJson(`${baseURL}/chat/completions`, chat())).status, 200)
  t.equal((await postJson(`${baseURL}/chat/completions`, chat())).status, 429)
})

t.test('a saturated event loop sheds API requests with a 503, probes still answer', async t => {
  const config = loadConfig({ LOG_LEVEL: 'silent', LOAD_SHED_EVENT_LOOP_DELAY_MS: '20', DASHSCOPE_BASE_URL: 'http://127.0.0.1:9/v1' })
  const server = Fastify(serverOptions(config))
  await server.register(fp(app), { config })
  // Something the gateway never does on purpose: block the loop, as a CPU-bound neighbour would.
  server.get('/test/block', async () => {
    const until = Date.now() + 300
    while (Date.now() < until);
    return { blocked: true }
  })
  await server.ready()
  t.after(() => server.close())
  await server.inject({ method: 'GET', url: '/test/block' })
  await new Promise(resolve => setTimeout(resolve, 5))
  const shed = await server.inject({ method: 'GET', url: '/v1/models' })
  t.equal(shed.statusCode, 503)
  t.equal(shed.headers['retry-after'], '2')
  t.match(shed.json().error, { code: 'overloaded', type: 'server_error' })
  const probe = await server.inject({ method: 'GET', url: '/health' })
  t.equal(probe.statusCode, 200)
})

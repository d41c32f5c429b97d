import t from 'tap'
import OpenAI from 'openai'
import { setTimeout as sleep } from 'node:timers/promises'
import { postJson, startStack, user } from '../helper.ts'
import type { RecordedRequest } from '../simulator/index.ts'

// What an upstream refusal or rate limit does to the gateway's keys, as clients and operators see it.

const chat = (model: string, extra: object = {}) => ({ model, messages: user('hi'), ...extra })
const keyOf = (request: RecordedRequest) => String(request.headers.authorization).replace('Bearer ', '')
const chats = (requests: RecordedRequest[]) => requests.filter(request => request.path.endsWith('/chat/completions'))

async function health (origin: string) {
  return (await (await fetch(`${origin}/health`)).json()) as any
}

async function send (url: string, body: object) {
  const res = await postJson(url, body)
  return { status: res.status, headers: res.headers, body: (await res.json()) as any }
}

t.test('access denied for one model (403) never keeps the keys from serving other models', async t => {
  const stack = await startStack(t, { sim: { apiKeys: ['sk-a', 'sk-b'] }, env: { DASHSCOPE_API_KEY: 'sk-a,sk-b' } })
  stack.sim.setOverride(request => request.body.model === 'qwen3-max' ? { error: 'access_denied' } : undefined)

  const denied = await send(`${stack.baseURL}/chat/completions`, chat('qwen3-max'))
  t.equal(denied.status, 403, 'the model the account has not activated: 403')
  t.equal(denied.headers.get('x-should-retry'), 'false')
  t.equal(chats(stack.sim.requests).length, 2, 'tried on both keys (each account may differ)')

  for (const model of ['qwen-plus', 'qwen-flash', 'qwen-plus']) {
    const res = await send(`${stack.baseURL}/chat/completions`, chat(model))
    t.equal(res.status, 200, `${model} is still served`)
  }
  const again = await send(`${stack.baseURL}/chat/completions`, chat('qwen3-max'))
  t.equal(again.status, 403, 'the refused model keeps its refusal')
  t.match(again.body.error.message, /refused every configured key for qwen3-max.*Access to model denied/)
  t.equal(again.headers.get('x-should-retry'), 'false')
  t.equal(chats(stack.sim.requests).filter(request => request.body.model === 'qwen3-max').length, 2, 'without asking the upstream again')

  const state = await health(stack.origin)
  t.equal(state.status, 'ok', 'the gateway is not degraded by one model')
  for (const key of state.upstreams[0].keys) {
    t.equal(key.state, 'healthy', `${key.key} is healthy`)
    t.match(key.models, [{ model: 'qwen3-max', state: 'disabled', reason: 'access_denied', upstream_message: /Access to model denied/ }])
  }
})

t.test('a wrong DASHSCOPE_API_KEY: every request is told so (401, do not retry), not a 429', async t => {
  const stack = await startStack(t, { sim: { apiKeys: ['sk-right'] }, env: { DASHSCOPE_API_KEY: 'sk-wrong-key-123456' } })
  const first = await send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))
  t.equal(first.status, 401)
  t.equal(first.headers.get('x-should-retry'), 'false')
  for (const model of ['qwen-plus', 'qwen3-max']) {
    const later = await send(`${stack.baseURL}/chat/completions`, chat(model))
    t.equal(later.status, 401, `${model}: the refusal, not a cooldown`)
    t.equal(later.headers.get('x-should-retry'), 'false')
    t.equal(later.headers.get('retry-after'), null, 'no Retry-After: waiting does not fix a wrong key')
    t.match(later.body.error, { code: 'invalid_api_key', message: /refused every configured key.*Incorrect API key provided/ })
    t.notMatch(later.body.error.message, /sk-wrong/, 'the key is not shown')
  }
  t.equal(chats(stack.sim.requests).length, 1, 'the upstream was asked once')

  // The official SDK retries 429s and 5xx; told not to retry, it raises the real cause at once.
  const client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'unused' })
  const startedAt = performance.now()
  const error = await client.chat.completions.create(chat('qwen-plus') as any).catch((err: unknown) => err)
  t.ok(error instanceof OpenAI.AuthenticationError, `the SDK raised ${(error as Error).constructor.name}`)
  t.ok(performance.now() - startedAt < 2000, 'without retrying')

  const state = await health(stack.origin)
  t.equal(state.status, 'degraded', '/health agrees: no usable key')
  t.match(state.upstreams[0].keys[0], { state: 'disabled', reason: 'refused', upstream_message: /Incorrect API key/ })
  const ready = await fetch(`${stack.origin}/health/ready`)
  t.equal(ready.status, 503)
})

t.test('a 404 for an unknown model sets nothing aside', async t => {
  const stack = await startStack(t, { env: { DASHSCOPE_API_KEY: 'sk-a' } })
  for (let i = 0; i < 3; i++) t.equal((await send(`${stack.baseURL}/chat/completions`, chat('qwen-nonexistent'))).status, 404)
  t.equal((await send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))).status, 200)
  const [key] = (await health(stack.origin)).upstreams[0].keys
  t.match(key, { state: 'healthy', models: [] })
})

t.test('a request that started before a 429 does not undo the cooldown when it succeeds', async t => {
  const stack = await startStack(t, { env: { DASHSCOPE_API_KEY: 'sk-a' } })
  stack.sim.setOverride((_request, index) => index === 0 ? { ttfbMs: 400 } : { error: 'limit_requests', retryAfter: 20 })
  const slow = send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))
  await stack.sim.waitFor('request')
  const limited = await send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))
  t.equal(limited.status, 429)
  t.equal((await slow).status, 200, 'the slow request succeeds after the 429')
  const after = await send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))
  t.equal(after.status, 429, 'the key still cools down')
  t.equal(after.body.error.code, 'upstream_keys_cooling_down')
  const retryAfter = Number(after.headers.get('retry-after'))
  t.ok(retryAfter >= 19 && retryAfter <= 20, `Retry-After is the true wait (${retryAfter} s)`)
  t.equal(chats(stack.sim.requests).length, 2, 'no upstream call while it cools down')
})

t.test('backoff grows on consecutive 429s, while a burst of concurrent 429s counts once', async t => {
  const stack = await startStack(t, { env: { DASHSCOPE_API_KEY: 'sk-a', UPSTREAM_MAX_ATTEMPTS: '1' } })
  stack.sim.setOverride(() => ({ error: 'limit_requests', ttfbMs: 50 }))
  const levels: number[] = []
  for (let episode = 0; episode < 3; episode++) {
    const burst = await Promise.all([1, 2, 3, 4].map(() => send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))))
    t.ok(burst.every(res => res.status === 429))
    const [model] = (await health(stack.origin)).upstreams[0].keys[0].models
    levels.push(model.failures)
    await sleep(model.retry_in_seconds * 1000 + 50)
  }
  t.same(levels, [1, 2, 3], 'one step per episode, not one per request')
})

t.test('after a refusal runs out, one request probes the key while the others are told the refusal', async t => {
  const stack = await startStack(t, { sim: { apiKeys: ['sk-a'] }, env: { DASHSCOPE_API_KEY: 'sk-a', KEY_DISABLE_MS: '1000' } })
  let revoked = true
  stack.sim.setOverride(() => revoked ? { error: 'invalid_api_key', ttfbMs: 200 } : { ttfbMs: 200 })
  t.equal((await send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))).status, 401)
  await sleep(1100)
  revoked = false // the operator fixed the account meanwhile
  const burst = await Promise.all([1, 2, 3, 4, 5].map(() => send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))))
  t.same(burst.map(res => res.status).sort(), [200, 401, 401, 401, 401], 'one probe went through, the rest were told the refusal')
  t.equal(chats(stack.sim.requests).length, 2, 'the upstream saw the first refusal and one probe, not a herd')
  t.equal((await send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))).status, 200, 'the probe cleared the key')
  t.equal((await health(stack.origin)).upstreams[0].keys[0].state, 'healthy')
})

t.test('quota spent on one key: set aside for every model, the other key serves', async t => {
  const stack = await startStack(t, { sim: { apiKeys: ['sk-a', 'sk-b'] }, env: { DASHSCOPE_API_KEY: 'sk-a,sk-b' } })
  stack.sim.setOverride(request => keyOf(request) === 'sk-a' ? { error: 'allocation_quota' } : undefined)
  for (let i = 0; i < 6; i++) {
    t.equal((await send(`${stack.baseURL}/chat/completions`, chat(i % 2 ? 'qwen-plus' : 'qwen3-max', { messages: user(`conversation ${i}`) }))).status, 200)
  }
  t.equal(chats(stack.sim.requests).filter(request => keyOf(request) === 'sk-a').length, 1, 'the spent key was tried once, for all models')
  t.match((await health(stack.origin)).upstreams[0].keys[0], { state: 'disabled', reason: 'quota' })
})

t.test('an upstream that quotes the refused key, whole or masked, never gets it past the gateway', async t => {
  const key = 'sk-4f9a2b7c1d8e6f30a5b2'
  const { createServer } = await import('node:http')
  const upstream = createServer((_request, response) => {
    const message = `Incorrect API key provided: ${key.slice(0, 7)}****${key.slice(-4)}. You sent ${key}; key ${key.slice(0, 10)}… is not valid.`
    response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message, type: 'invalid_request_error', code: 'invalid_api_key' } }))
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => upstream.close())
  const { port } = upstream.address() as import('node:net').AddressInfo
  const stack = await startStack(t, { env: { DASHSCOPE_BASE_URL: `http://127.0.0.1:${port}/v1`, DASHSCOPE_API_KEY: key } })
  for (let i = 0; i < 2; i++) {
    const res = await send(`${stack.baseURL}/chat/completions`, chat('qwen-plus'))
    t.equal(res.status, 401)
    const text = JSON.stringify(res.body)
    t.match(res.body.error.message, /Incorrect API key provided: \[redacted\]/)
    for (const part of [key, key.slice(0, 7), key.slice(-4), key.slice(3, 10)]) t.notOk(text.includes(part), `${part} is not in the answer`)
  }
  const health = JSON.stringify(await (await fetch(`${stack.origin}/health`)).json())
  t.notOk(health.includes(key.slice(0, 7)), 'nor in /health')
})

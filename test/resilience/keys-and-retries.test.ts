import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postJson, readEvents, startStack, user } from '../helper.ts'
import { startSimulator } from '../simulator/index.ts'
import type { RecordedRequest } from '../simulator/index.ts'

const chat = (extra: object = {}) => ({ model: 'qwen-plus', messages: user('hi'), ...extra })
const keyOf = (request: RecordedRequest) => String(request.headers.authorization).replace('Bearer ', '')
const chats = (requests: RecordedRequest[]) => requests.filter(request => request.path.endsWith('/chat/completions'))

async function health (origin: string) {
  return (await (await fetch(`${origin}/health`)).json()) as any
}

async function metric (origin: string, line: RegExp): Promise<number | null> {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const found = text.split('\n').find(row => line.test(row))
  return found ? Number(found.split(' ').at(-1)) : null
}

t.test('a key that answers 429 cools down (Retry-After honoured) while the others carry the traffic', async t => {
  const stack = await startStack(t, { sim: { apiKeys: ['sk-a', 'sk-b'] }, env: { DASHSCOPE_API_KEY: 'sk-a,sk-b' } })
  stack.sim.setOverride(request => keyOf(request) === 'sk-a' ? { error: 'limit_requests', retryAfter: 2 } : undefined)
  // Six conversations: each sticks to one key, and together they spread over both.
  for (let i = 0; i < 6; i++) {
    const res = await postJson(`${stack.baseURL}/chat/completions`, chat({ messages: user(`conversation ${i}`) }))
    t.equal(res.status, 200, `request ${i + 1} served`)
    await res.text()
  }
  const attempts = chats(stack.sim.requests)
  t.equal(attempts.filter(request => keyOf(request) === 'sk-a').length, 1, 'the rate-limited key was tried once, then left alone')
  t.equal(attempts.length, 7, 'six answers, one retry')
  const state = await health(stack.origin)
  const [first, second] = state.upstreams[0].keys
  // DashScope limits each model on its own: the key still serves other models meanwhile.
  t.match(first, { key: 'key-1', state: 'healthy', models: [{ model: 'qwen-plus', state: 'cooling', reason: 'rate_limited' }] })
  const { retry_in_seconds: left } = first.models[0]
  t.ok(left >= 1 && left <= 2, `cooling for the upstream's Retry-After (${left} s left)`)
  t.match(second, { key: 'key-2', state: 'healthy', models: [] })
  t.equal(await metric(stack.origin, /^qwen_gateway_upstream_key_models_set_aside\{upstream="dashscope",key="key-1"\}/), 1)
  t.equal(await metric(stack.origin, /^qwen_gateway_upstream_key_models_set_aside\{upstream="dashscope",key="key-2"\}/), 0)
  t.equal(await metric(stack.origin, /^qwen_gateway_upstream_key_up\{upstream="dashscope",key="key-1"\}/), 1)
  t.equal(await metric(stack.origin, /^qwen_gateway_upstream_retries_total\{upstream="dashscope",reason="rate_limit"\}/), 1)
  const text = JSON.stringify(state) + await (await fetch(`${stack.origin}/metrics`)).text()
  t.notMatch(text, /sk-a|sk-b/, 'keys are never shown')
})

t.test('without Retry-After the cooldown is an exponential backoff with jitter', async t => {
  const stack = await startStack(t, { sim: { apiKeys: ['sk-a', 'sk-b'] }, env: { DASHSCOPE_API_KEY: 'sk-a,sk-b' } })
  stack.sim.setOverride(request => keyOf(request) === 'sk-a' ? { error: 'limit_requests' } : undefined)
  for (let i = 0; i < 6; i++) await (await postJson(`${stack.baseURL}/chat/completions`, chat({ messages: user(`conversation ${i}`) }))).text()
  const [first] = (await health(stack.origin)).upstreams[0].keys
  t.match(first.models, [{ state: 'cooling', failures: 1 }])
  t.ok(first.models[0].retry_in_seconds <= 1, 'first backoff is at most one second')
})

t.test('a refused key (401) is set aside and the request still succeeds on another', async t => {
  const stack = await startStack(t, { sim: { apiKeys: ['sk-good'] }, env: { DASHSCOPE_API_KEY: 'sk-revoked,sk-good' } })
  for (const stream of [false, true]) {
    const res = await postJson(`${stack.baseURL}/chat/completions`, chat({ stream }))
    t.equal(res.status, 200)
    await res.text()
  }
  const [first] = (await health(stack.origin)).upstreams[0].keys
  t.match(first, { state: 'disabled', reason: 'refused' })
  t.equal(chats(stack.sim.requests).filter(request => keyOf(request) === 'sk-revoked').length, 1)
})

t.test('when every key is rate limited for a model the client gets a 429 with Retry-After, without asking the upstream again', async t => {
  const stack = await startStack(t, { sim: { defaults: { error: 'limit_requests' } }, env: { DASHSCOPE_API_KEY: 'sk-a,sk-b' } })
  const res = await postJson(`${stack.baseURL}/chat/completions`, chat())
  t.equal(res.status, 429)
  const retryAfter = Number(res.headers.get('retry-after'))
  t.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`)
  t.equal(((await res.json()) as any).error.code, 'limit_requests')
  const again = await postJson(`${stack.baseURL}/chat/completions`, chat())
  t.equal(again.status, 429, 'while both keys cool down')
  t.equal(((await again.json()) as any).error.code, 'upstream_keys_cooling_down')
  t.equal(chats(stack.sim.requests).length, 2, 'no upstream call while every key cools down')
  const state = await health(stack.origin)
  t.equal(state.status, 'ok', 'rate limits on one model do not degrade the gateway')
  t.match(state.upstreams[0].keys, [{ models: [{ model: 'qwen-plus', state: 'cooling' }] }, { models: [{ model: 'qwen-plus', state: 'cooling' }] }])
  const other = await postJson(`${stack.baseURL}/chat/completions`, { model: 'qwen-flash', messages: user('hi'), sim: { error: undefined } })
  t.equal(other.status, 429, 'qwen-flash is tried: its own limits, its own answer')
  t.equal(chats(stack.sim.requests).length, 4)
})

t.test('5xx and connection failures are retried before the first byte, within the attempt limit', async t => {
  const stack = await startStack(t)
  stack.sim.setOverride((_request, index) => index < 2 ? { error: 'internal_error' } : undefined)
  const res = await postJson(`${stack.baseURL}/chat/completions`, chat({ stream: true }))
  t.equal(res.status, 200, 'third attempt succeeds')
  t.equal((await readEvents(res)).at(-1)?.data, '[DONE]')
  t.equal(await metric(stack.origin, /^qwen_gateway_upstream_retries_total\{upstream="dashscope",reason="5xx"\}/), 2)

  const limited = await startStack(t, { env: { UPSTREAM_MAX_ATTEMPTS: '2' } })
  limited.sim.setOverride((_request, index) => index < 2 ? { error: 'internal_error' } : undefined)
  const failed = await postJson(`${limited.baseURL}/chat/completions`, chat())
  t.equal(failed.status, 500, 'two attempts allowed, both failed')
  t.equal(chats(limited.sim.requests).length, 2)
})

t.test('nothing is retried once the client has seen bytes', async t => {
  const stack = await startStack(t)
  const res = await postJson(`${stack.baseURL}/chat/completions`, chat({ stream: true, sim: { midStream: 'reset' } }))
  const events = await readEvents(res)
  t.ok(JSON.parse(events.at(-1)!.data).error)
  t.equal(chats(stack.sim.requests).length, 1)
})

t.test('client errors are not retried', async t => {
  const stack = await startStack(t, { env: { DASHSCOPE_API_KEY: 'sk-a,sk-b' } })
  const res = await postJson(`${stack.baseURL}/chat/completions`, chat({ sim: { error: 'context_overflow' } }))
  t.equal(res.status, 400)
  t.equal(chats(stack.sim.requests).length, 1)
})

function writeConfig (text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-config-'))
  const path = join(dir, 'gateway.yaml')
  writeFileSync(path, text)
  return path
}

t.test('aliases and ordered fallbacks from the config file', async t => {
  const primary = await startSimulator({ defaults: { error: 'service_unavailable_html' } })
  t.after(() => primary.close())
  const fallback = await startSimulator()
  t.after(() => fallback.close())
  // Port 9 (discard): nothing listens there, unlike a port freed by a closed server, which a parallel test could take.
  const goneUrl = 'http://127.0.0.1:9/v1'
  const config = writeConfig(`
upstreams:
  - name: dashscope
    base_url: ${primary.url}
    api_keys_env: TEST_PRIMARY_KEYS
  - name: unreachable
    base_url: ${goneUrl}
  - name: local-vllm
    base_url: ${fallback.url}
models:
  - id: qwen3-max
    aliases: [gpt-4o]
    targets:
      - upstream: dashscope
      - upstream: unreachable
      - upstream: local-vllm
        model: qwen-plus
`)
  const stack = await startStack(t, { env: { GATEWAY_CONFIG: config, TEST_PRIMARY_KEYS: 'sk-p1', UPSTREAM_MAX_ATTEMPTS: '5' } })

  for (const stream of [false, true]) {
    const res = await postJson(`${stack.baseURL}/chat/completions`, { model: 'gpt-4o', messages: user('hi'), stream })
    t.equal(res.status, 200, `served by the fallback (stream=${stream})`)
    await res.text()
  }
  const served = chats(fallback.requests)
  t.equal(served.length, 2)
  t.equal(served[0].body.model, 'qwen-plus', 'the fallback gets its own id for the model')
  t.equal(chats(primary.requests)[0].body.model, 'qwen3-max', 'the primary gets the id behind the alias')
  t.equal(chats(primary.requests)[0].headers.authorization, 'Bearer sk-p1', 'keys from the variable the file names')

  const models = (await (await fetch(`${stack.baseURL}/models`)).json()) as any
  t.same(models.data.map((model: any) => model.id), ['qwen3-max', 'gpt-4o'])
  const names = (await health(stack.origin)).upstreams.map((upstream: any) => upstream.name)
  t.same(names, ['dashscope', 'unreachable', 'local-vllm'])
})

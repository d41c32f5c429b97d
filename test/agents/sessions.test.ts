import t from 'tap'
import { postJson, startStack, user } from '../helper.ts'
import type { RecordedRequest } from '../simulator/index.ts'

const keyOf = (request: RecordedRequest) => String(request.headers.authorization).replace('Bearer ', '')
const chats = (requests: RecordedRequest[]) => requests.filter(request => request.path.endsWith('/chat/completions'))
const keys = ['sk-1', 'sk-2', 'sk-3', 'sk-4']

async function send (url: string, body: object, headers: Record<string, string> = {}) {
  const res = await postJson(url, body, headers)
  await res.text()
  return res.status
}

t.test('a conversation sticks to one upstream key, and moves when that key cools down', async t => {
  const { baseURL, origin, sim } = await startStack(t, { sim: { apiKeys: keys }, env: { DASHSCOPE_API_KEY: keys.join(',') } })
  const conversation = (turn: number) => ({
    model: 'qwen-plus',
    messages: [{ role: 'system', content: 'You are Roo.' }, { role: 'user', content: 'fix the bug' }, ...Array.from({ length: turn }, (_, i) => ({ role: 'assistant', content: `step ${i}` }))]
  })
  for (let turn = 0; turn < 5; turn++) t.equal(await send(`${baseURL}/chat/completions`, conversation(turn)), 200)
  const used = new Set(chats(sim.requests).map(keyOf))
  t.equal(used.size, 1, 'five turns, one key: the upstream prefix cache keeps hitting')
  const [sticky] = used

  sim.setOverride(request => keyOf(request) === sticky ? { error: 'limit_requests', retryAfter: 30 } : undefined)
  const before = chats(sim.requests).length
  for (let turn = 5; turn < 8; turn++) t.equal(await send(`${baseURL}/chat/completions`, conversation(turn)), 200)
  const after = chats(sim.requests).slice(before).map(keyOf)
  t.equal(after[0], sticky, 'tried the sticky key first')
  const moved = new Set(after.slice(1))
  t.equal(moved.size, 1, 'then settled on one other key')
  t.not([...moved][0], sticky)

  const health = (await (await fetch(`${origin}/health`)).json()) as any
  t.equal(health.active_sessions, 1)
})

t.test('different conversations spread over the keys; sessions are counted', async t => {
  const { baseURL, origin, sim } = await startStack(t, { sim: { apiKeys: keys }, env: { DASHSCOPE_API_KEY: keys.join(',') } })
  for (let i = 0; i < 24; i++) await send(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user(`task ${i}`) })
  const used = new Set(chats(sim.requests).map(keyOf))
  t.ok(used.size >= 3, `24 conversations used ${used.size} of 4 keys`)
  await send(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('task 0') }, { 'x-session-id': 'roo-task-1' })
  await send(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('task 0'), user: 'alice' })
  const health = (await (await fetch(`${origin}/health`)).json()) as any
  t.equal(health.active_sessions, 26, 'x-session-id and user are identities of their own')
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  t.match(metrics, /^qwen_gateway_active_sessions 26$/m)
})

t.test('an x-session-id keeps a conversation on its key even as its prompt changes', async t => {
  const { baseURL, sim } = await startStack(t, { sim: { apiKeys: keys }, env: { DASHSCOPE_API_KEY: keys.join(',') } })
  for (let i = 0; i < 6; i++) await send(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user(`different prompt ${i}`) }, { 'x-session-id': 'one-session' })
  t.equal(new Set(chats(sim.requests).map(keyOf)).size, 1)
})

t.test('tokens are counted per client key and model, cached tokens included', async t => {
  const { baseURL, origin } = await startStack(t, { env: { GATEWAY_API_KEYS: 'alpha-key,beta-key' } })
  const usage = { prompt_tokens: 100, completion_tokens: 20, cached_tokens: 64 }
  await send(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), sim: { usage } }, { authorization: 'Bearer alpha-key' })
  await send(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { usage } }, { authorization: 'Bearer beta-key' })
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  for (const client of ['key-1', 'key-2']) {
    t.match(metrics, new RegExp(`^qwen_gateway_tokens_total\\{model="qwen-plus",client="${client}",type="prompt"\\} 100$`, 'm'))
    t.match(metrics, new RegExp(`^qwen_gateway_tokens_total\\{model="qwen-plus",client="${client}",type="cached"\\} 64$`, 'm'))
  }
  t.notMatch(metrics, /alpha-key|beta-key/)
})

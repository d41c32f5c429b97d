import t from 'tap'
import OpenAI from 'openai'
import { postJson, startStack } from '../helper.ts'

// /v1/responses over real HTTP against the simulator: the JSON answer, what goes upstream, stored responses
// (GET, DELETE, input_items, previous_response_id, item_reference, store:false), and the 4xx answers.

const reply = (text: string) => `Hello from the Qwen simulator! You said: ${text}`
const lastChat = (requests: Array<{ path: string, body: any }>) => requests.filter(request => request.path.endsWith('/chat/completions')).at(-1)!.body

async function create (baseURL: string, body: Record<string, unknown>) {
  const res = await postJson(`${baseURL}/responses`, { model: 'qwen-plus', ...body })
  return { status: res.status, body: await res.json() as any, headers: res.headers }
}

t.test('a JSON answer is a whole Response; the upstream gets a chat request with the model\'s output budget', async t => {
  const { baseURL, sim } = await startStack(t)
  const { status, body, headers } = await create(baseURL, { input: 'hello', instructions: 'Be brief.', metadata: { run: '1' }, sim: { usage: { prompt_tokens: 40, completion_tokens: 9, cached_tokens: 30 } } })
  t.equal(status, 200)
  t.match(headers.get('content-type'), /^application\/json/)
  t.match(body, {
    id: /^resp_[0-9a-f]{24}$/,
    object: 'response',
    status: 'completed',
    model: 'qwen-plus',
    error: null,
    incomplete_details: null,
    instructions: 'Be brief.',
    metadata: { run: '1' },
    store: true,
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: []
  })
  t.type(body.created_at, 'number')
  t.ok(Math.abs(body.created_at - Date.now() / 1000) < 60, 'created_at in seconds')
  t.notOk('output_text' in body)
  t.same(body.output, [{ type: 'message', id: `msg_${body.id.slice(5)}_0`, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: reply('hello'), annotations: [], logprobs: [] }] }])
  t.same(body.usage, { input_tokens: 40, input_tokens_details: { cached_tokens: 30, cache_write_tokens: 0 }, output_tokens: 9, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 49 })
  t.same(lastChat(sim.requests), {
    model: 'qwen-plus',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello' }],
    sim: { usage: { prompt_tokens: 40, completion_tokens: 9, cached_tokens: 30 } },
    max_tokens: 32768
  }, 'Responses-only fields stay here; max_tokens is the model\'s whole output budget (Codex never sets one)')
})

t.test('request fields reach the upstream translated: effort, text.format, max_output_tokens, tools, tool_choice', async t => {
  const { baseURL, sim } = await startStack(t)
  await create(baseURL, {
    input: [{ role: 'developer', content: 'dev' }, { role: 'user', content: [{ type: 'input_text', text: 'json please' }] }],
    reasoning: { effort: 'low' },
    text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object' }, strict: true } },
    max_output_tokens: 500,
    tools: [{ type: 'function', name: 'ls', parameters: { type: 'object', properties: {} } }, { type: 'web_search' }],
    tool_choice: { type: 'function', name: 'ls' },
    temperature: 0.2
  })
  const chat = lastChat(sim.requests)
  t.match(chat, {
    messages: [{ role: 'system', content: 'dev' }, { role: 'user', content: 'json please' }],
    enable_thinking: true,
    thinking_budget: 1024,
    response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' }, strict: true } },
    max_tokens: 500,
    tools: [{ type: 'function', function: { name: 'ls' } }],
    tool_choice: { type: 'function', function: { name: 'ls' } },
    parallel_tool_calls: true,
    temperature: 0.2
  })
  t.equal(chat.tools.length, 1, 'web_search accepted and dropped')
  t.notOk('reasoning_effort' in chat)

  await create(baseURL, { model: 'qwen3-coder-plus', input: 'x', reasoning: { effort: 'high' }, max_output_tokens: 1_000_000 })
  const coder = lastChat(sim.requests)
  t.notOk('enable_thinking' in coder, 'no thinking switch for Qwen-Coder')
  t.equal(coder.max_tokens, 65536, 'clamped to the model\'s output ceiling')
})

t.test('a JSON request with thinking on is asked upstream as a stream and gathered (DashScope streams Qwen3 thinking only)', async t => {
  const { baseURL, sim } = await startStack(t)
  const { status, body } = await create(baseURL, { input: 'why', reasoning: { effort: 'low', summary: 'auto' }, sim: { reasoning: 'Because.', usage: { prompt_tokens: 12, completion_tokens: 5 } } })
  t.equal(status, 200)
  t.match(lastChat(sim.requests), { stream: true, stream_options: { include_usage: true }, enable_thinking: true })
  t.match(body, { status: 'completed', output: [{ type: 'reasoning', summary: [{ type: 'summary_text', text: 'Because.' }] }, { type: 'message', content: [{ text: reply('why') }] }] })
  t.match(body.usage, { input_tokens: 12, output_tokens: 5 })
  t.ok(body.usage.output_tokens_details.reasoning_tokens > 0, 'reasoning tokens reported')

  await create(baseURL, { input: 'plain' })
  t.notOk('stream' in lastChat(sim.requests), 'without thinking, a JSON request stays one')
  await create(baseURL, { model: 'qwen3-coder-plus', input: 'coder', reasoning: { effort: 'high' } })
  t.notOk('stream' in lastChat(sim.requests), 'nor for a model without thinking')
})

t.test('stored responses: GET returns it, input_items lists the input with ids, DELETE removes it', async t => {
  const { baseURL } = await startStack(t)
  const { body: created } = await create(baseURL, { input: [{ role: 'user', content: 'one' }, { role: 'user', content: 'two' }, { type: 'message', id: 'msg_client', role: 'user', content: 'three' }] })
  const got = await fetch(`${baseURL}/responses/${created.id}`)
  t.equal(got.status, 200)
  t.same(await got.json(), created)

  const items = await (await fetch(`${baseURL}/responses/${created.id}/input_items`)).json() as any
  t.equal(items.object, 'list')
  t.same(items.data.map((item: any) => item.content), ['three', 'two', 'one'], 'newest first by default')
  t.same(items.data.map((item: any) => item.id), ['msg_client', `msg_${created.id.slice(5)}_in1`, `msg_${created.id.slice(5)}_in0`])
  t.match(items, { first_id: 'msg_client', last_id: `msg_${created.id.slice(5)}_in0`, has_more: false })
  const page = await (await fetch(`${baseURL}/responses/${created.id}/input_items?order=asc&limit=2`)).json() as any
  t.same(page.data.map((item: any) => item.content), ['one', 'two'])
  t.equal(page.has_more, true)
  const rest = await (await fetch(`${baseURL}/responses/${created.id}/input_items?order=asc&after=${page.last_id}`)).json() as any
  t.same(rest.data.map((item: any) => item.content), ['three'])
  t.equal((await fetch(`${baseURL}/responses/${created.id}/input_items?limit=0`)).status, 400)
  t.equal((await fetch(`${baseURL}/responses/${created.id}/input_items?limit=101`)).status, 400)
  t.equal((await fetch(`${baseURL}/responses/${created.id}/input_items?order=sideways`)).status, 400)

  const deleted = await fetch(`${baseURL}/responses/${created.id}`, { method: 'DELETE' })
  t.same(await deleted.json(), { id: created.id, object: 'response', deleted: true })
  const gone = await fetch(`${baseURL}/responses/${created.id}`)
  t.equal(gone.status, 404)
  t.match(await gone.json(), { error: { type: 'invalid_request_error', message: /not found/ } })
  t.equal((await fetch(`${baseURL}/responses/${created.id}`, { method: 'DELETE' })).status, 404)
  t.equal((await fetch(`${baseURL}/responses/${created.id}/input_items`)).status, 404)
})

t.test('previous_response_id: the stored chain goes first, instructions are not inherited; unknown ids are a 404 envelope', async t => {
  const { baseURL, sim } = await startStack(t)
  const { body: first } = await create(baseURL, { input: 'first', instructions: 'Old rules.' })
  const { body: second } = await create(baseURL, { input: 'second', previous_response_id: first.id })
  t.equal(second.previous_response_id, first.id)
  const { body: third } = await create(baseURL, { input: 'third', previous_response_id: second.id, instructions: 'New rules.' })
  t.equal(third.status, 'completed')
  t.same(lastChat(sim.requests).messages, [
    { role: 'system', content: 'New rules.' },
    { role: 'user', content: 'first' },
    { role: 'assistant', content: reply('first') },
    { role: 'user', content: 'second' },
    { role: 'assistant', content: reply('second') },
    { role: 'user', content: 'third' }
  ])
  const before = sim.requests.length
  const missing = await create(baseURL, { input: 'x', previous_response_id: 'resp_unknown' })
  t.equal(missing.status, 404)
  t.same(missing.body, { error: { message: missing.body.error.message, type: 'invalid_request_error', param: 'previous_response_id', code: 'response_not_found' } })
  t.match(missing.body.error.message, /resp_unknown/)
  t.equal(sim.requests.length, before, 'nothing sent upstream')
})

t.test('item_reference: stored output items are inlined by id (AI SDK multi-step); unknown ids are a 400', async t => {
  const { baseURL, sim } = await startStack(t)
  const { body: first } = await create(baseURL, { input: 'why', sim: { reasoning: 'Because.' }, reasoning: { summary: 'auto' } })
  const [reasoning, message] = first.output
  t.equal(reasoning.type, 'reasoning')
  const { status } = await create(baseURL, {
    input: [{ role: 'user', content: 'why' }, { type: 'item_reference', id: reasoning.id }, { type: 'item_reference', id: message.id }, { role: 'user', content: 'and then?' }]
  })
  t.equal(status, 200)
  t.same(lastChat(sim.requests).messages, [
    { role: 'user', content: 'why' },
    { role: 'assistant', content: reply('why'), reasoning_content: 'Because.' },
    { role: 'user', content: 'and then?' }
  ])
  const unknown = await create(baseURL, { input: [{ type: 'item_reference', id: 'msg_nope' }] })
  t.equal(unknown.status, 400)
  t.match(unknown.body.error, { type: 'invalid_request_error', code: 'item_not_found', param: 'input[0].id' })
})

t.test('store:false persists nothing: no GET, no previous_response_id, no item_reference', async t => {
  const { baseURL } = await startStack(t)
  const { body } = await create(baseURL, { input: 'secret', store: false })
  t.equal(body.store, false)
  t.equal((await fetch(`${baseURL}/responses/${body.id}`)).status, 404)
  t.equal((await create(baseURL, { input: 'x', previous_response_id: body.id })).status, 404)
  t.equal((await create(baseURL, { input: [{ type: 'item_reference', id: body.output[0].id }] })).status, 400)
})

t.test('what cannot be served is a 400, never a 5xx, and nothing goes upstream', async t => {
  const { baseURL, sim } = await startStack(t)
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ input: 'x', conversation: 'conv_1' }, /conversation/],
    [{ input: 'x', background: true }, /background/],
    [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file_1' }] }] }, /input_file/],
    [{ input: [] }, /at least one message/],
    [{ input: 'x', temperature: 'hot' }, /temperature/],
    [{ input: 'x', text: { format: { type: 'json_schema', schema: {} } } }, /name/]
  ]
  for (const [body, message] of cases) {
    const res = await create(baseURL, body)
    t.equal(res.status, 400, JSON.stringify(body))
    t.match(res.body.error, { type: 'invalid_request_error', message })
  }
  const noModel = await postJson(`${baseURL}/responses`, { input: 'x' })
  t.equal(noModel.status, 400)
  for (const path of ['/responses/resp_1/cancel', '/responses/compact']) {
    const res = await postJson(`${baseURL}${path}`, {})
    t.equal(res.status, 400, path)
    t.match(await res.json(), { error: { type: 'invalid_request_error', message: /not supported/ } })
  }
  const { body: stored } = await create(baseURL, { input: 'x' })
  const replay = await fetch(`${baseURL}/responses/${stored.id}?stream=true`)
  t.equal(replay.status, 400)
  t.equal(sim.requests.filter(request => request.path.endsWith('/chat/completions')).length, 1, 'only the one valid request went upstream')
})

t.test('upstream errors before the answer: the envelope with the upstream status class; a context overflow is a 400 context_length_exceeded', async t => {
  const { baseURL } = await startStack(t)
  const overflow = await create(baseURL, { input: 'x', sim: { error: 'context_overflow' } })
  t.equal(overflow.status, 400)
  t.match(overflow.body.error, { code: 'context_length_exceeded', type: 'invalid_request_error' })
  t.equal(overflow.headers.get('x-should-retry'), 'false')
  const streamed = await create(baseURL, { input: 'x', stream: true, sim: { error: 'context_overflow' } })
  t.equal(streamed.status, 400, 'also for a stream whose upstream refused before the first byte')
  t.equal(streamed.body.error.code, 'context_length_exceeded')
  const limited = await create(baseURL, { input: 'x', sim: { error: 'limit_requests', retryAfter: 3 } })
  t.equal(limited.status, 429)
  const unknownModel = await create(baseURL, { model: 'qwen-nonexistent', input: 'x' })
  t.ok(unknownModel.status >= 400 && unknownModel.status < 500, `an unknown model is a client error (${unknownModel.status})`)
})

t.test('POST /v1/responses/input_tokens estimates the translated input', async t => {
  const { baseURL, sim } = await startStack(t)
  const small = await (await postJson(`${baseURL}/responses/input_tokens`, { model: 'qwen-plus', input: 'hi' })).json() as any
  t.equal(small.object, 'response.input_tokens')
  t.ok(small.input_tokens > 0)
  const big = await (await postJson(`${baseURL}/responses/input_tokens`, { model: 'qwen-plus', input: 'word '.repeat(400), instructions: 'rules', tools: [{ type: 'function', name: 'ls' }] })).json() as any
  t.ok(big.input_tokens > 400, `${big.input_tokens} tokens for 2,000 bytes`)
  t.equal(sim.requests.length, 0, 'counted without asking the upstream')
  t.equal((await postJson(`${baseURL}/responses/input_tokens`, { input: 'x', previous_response_id: 'resp_nope' })).status, 404)
})

t.test('openai-node: create, retrieve, input_items.list and delete against the gateway', async t => {
  const { baseURL } = await startStack(t)
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
  const response = await client.responses.create({ model: 'qwen-plus', input: 'sdk' })
  t.equal(response.output_text, reply('sdk'), 'the SDK derives output_text')
  const retrieved = await client.responses.retrieve(response.id)
  t.equal(retrieved.id, response.id)
  const items = await client.responses.inputItems.list(response.id)
  t.equal(items.data.length, 1)
  await client.responses.delete(response.id)
  await t.rejects(client.responses.retrieve(response.id), { message: /404/, status: 404 })
})

t.test('with client keys, a stored response is visible only to the client that created it', async t => {
  const { baseURL } = await startStack(t, { env: { GATEWAY_API_KEYS: 'alice-key-123,bob-key-4567' } })
  const as = (key: string) => ({ authorization: `Bearer ${key}` })
  const created = await (await postJson(`${baseURL}/responses`, { model: 'qwen-plus', input: 'mine' }, as('alice-key-123'))).json() as any
  t.equal((await fetch(`${baseURL}/responses/${created.id}`, { headers: as('alice-key-123') })).status, 200)
  t.equal((await fetch(`${baseURL}/responses/${created.id}`, { headers: as('bob-key-4567') })).status, 404)
  t.equal((await fetch(`${baseURL}/responses/${created.id}/input_items`, { headers: as('bob-key-4567') })).status, 404)
  t.equal((await postJson(`${baseURL}/responses`, { model: 'qwen-plus', input: 'x', previous_response_id: created.id }, as('bob-key-4567'))).status, 404)
  t.equal((await postJson(`${baseURL}/responses`, { model: 'qwen-plus', input: [{ type: 'item_reference', id: created.output[0].id }] }, as('bob-key-4567'))).status, 400)
  t.equal((await fetch(`${baseURL}/responses/${created.id}`, { method: 'DELETE', headers: as('bob-key-4567') })).status, 404)
  t.equal((await fetch(`${baseURL}/responses/${created.id}`, { headers: as('alice-key-123') })).status, 200, 'still there for its owner')
  t.equal((await fetch(`${baseURL}/responses/${created.id}`)).status, 401)
})

t.test('Codex\'s session_id header (or prompt_cache_key) keeps a conversation on one upstream key', async t => {
  const keys = ['sk-1', 'sk-2', 'sk-3', 'sk-4']
  const { baseURL, sim } = await startStack(t, { sim: { apiKeys: keys }, env: { DASHSCOPE_API_KEY: keys.join(',') } })
  const keyOf = (request: { headers: Record<string, unknown> }) => String(request.headers.authorization)
  for (const [field, value] of [['header', 'codex-session-1'], ['prompt_cache_key', 'cache-key-1']]) {
    const before = sim.requests.length
    for (let turn = 0; turn < 6; turn++) {
      const body = { model: 'qwen-plus', store: false, input: `turn ${turn} ${Math.random()}`, ...(field === 'prompt_cache_key' ? { prompt_cache_key: value } : {}) }
      const res = await postJson(`${baseURL}/responses`, body, field === 'header' ? { session_id: value } : {})
      t.equal(res.status, 200)
      await res.text()
    }
    t.equal(new Set(sim.requests.slice(before).map(keyOf)).size, 1, `${field}: six turns with different first messages, one key`)
  }
})

import t from 'tap'
import { postJson, readEvents, startStack, type Stack } from '../helper.ts'
import type { RecordedRequest } from '../simulator/index.ts'
import { checkGrammar } from '../unit/messages-grammar.ts'

// POST /v1/messages and /v1/messages/count_tokens over real HTTP, the gateway in front of the simulator (which
// speaks chat completions only: every answer here went through the translation both ways).

const KEY = 'anthropic-client-key'
const chats = (requests: RecordedRequest[]) => requests.filter(request => request.path.endsWith('/chat/completions'))
const lastChat = (stack: Stack) => chats(stack.sim.requests).at(-1)!.body
const reply = (text: string) => `Hello from the Qwen simulator! You said: ${text}`
const post = (stack: Stack, body: object, headers: Record<string, string> = {}, path = '/messages') =>
  postJson(`${stack.baseURL}${path}`, body, { 'anthropic-version': '2023-06-01', ...headers })

t.test('JSON: a claude-* name reaches qwen3-coder-plus, max_tokens clamped, no thinking switch, the name echoed', async t => {
  const stack = await startStack(t)
  stack.sim.setOverride(() => ({ usage: { prompt_tokens: 120, completion_tokens: 9, cached_tokens: 100 } }))
  const res = await post(stack, {
    model: 'claude-opus-5-5',
    max_tokens: 128_000,
    thinking: { type: 'adaptive' },
    output_config: { effort: 'high' },
    system: [{ type: 'text', text: 'You are Claude Code.' }],
    messages: [{ role: 'user', content: [{ type: 'text', text: 'hello there' }] }],
    metadata: { user_id: JSON.stringify({ session_id: 's-1' }) }
  }, { 'anthropic-version': '2026-10-21' }, '/messages?beta=true')
  t.equal(res.status, 200)
  t.ok(res.headers.get('request-id'), 'request-id header')
  t.equal(res.headers.get('request-id'), res.headers.get('x-request-id'))
  const body = await res.json() as any
  t.match(body, {
    id: /^msg_/,
    type: 'message',
    role: 'assistant',
    model: 'claude-opus-5-5',
    content: [{ type: 'text', text: reply('hello there') }],
    stop_reason: 'end_turn',
    stop_sequence: null
  })
  t.same(body.usage, { input_tokens: 20, output_tokens: 9, cache_creation_input_tokens: 0, cache_read_input_tokens: 100 })
  const upstream = lastChat(stack)
  t.equal(upstream.model, 'qwen3-coder-plus')
  t.equal(upstream.max_tokens, 65_536, 'clamped to the model\'s output ceiling')
  t.notOk('enable_thinking' in upstream || 'thinking_budget' in upstream || 'reasoning_effort' in upstream, 'Qwen-Coder never gets a thinking switch')
  t.same(upstream.messages, [{ role: 'system', content: 'You are Claude Code.' }, { role: 'user', content: 'hello there' }])
  t.notOk('stream' in upstream)
})

t.test('thinking models get the switch: enabled with its budget, adaptive by effort, disabled off', async t => {
  const stack = await startStack(t)
  const ask = async (extra: object) => {
    const res = await post(stack, { model: 'qwen-plus', max_tokens: 1000, messages: [{ role: 'user', content: 'x' }], ...extra })
    await res.text()
    return lastChat(stack)
  }
  t.match(await ask({ thinking: { type: 'enabled', budget_tokens: 2048 } }), { enable_thinking: true, thinking_budget: 2048 })
  t.match(await ask({ thinking: { type: 'adaptive' }, output_config: { effort: 'low' } }), { enable_thinking: true, thinking_budget: 1024 })
  const high = await ask({ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } })
  t.equal(high.enable_thinking, true)
  t.notOk('reasoning_effort' in high, 'mapped, never sent beside thinking_budget')
  t.match(await ask({ thinking: { type: 'disabled' } }), { enable_thinking: false })
  t.match(await ask({}), { enable_thinking: false })
})

t.test('stream: thinking then text, in the §2.5 grammar, with usage in message_delta', async t => {
  const stack = await startStack(t)
  stack.sim.setOverride(() => ({ reasoning: 'The user greets me; answer briefly.', usage: { prompt_tokens: 50, completion_tokens: 20 } }))
  const res = await post(stack, { model: 'qwen-plus', max_tokens: 500, stream: true, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'hi' }] })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.ok(res.headers.get('request-id'))
  const events = await readEvents(res)
  const result = checkGrammar(events)
  t.same(result.problems, [])
  t.same(result.blocks.map(block => block.type), ['thinking', 'text'])
  t.equal(result.blocks[0].thinking, 'The user greets me; answer briefly.')
  t.match(result.blocks[0].signature, /^qg1\./)
  t.equal(result.blocks[1].text, reply('hi'))
  t.equal(result.stopReason, 'end_turn')
  t.same(result.usage, { input_tokens: 50, output_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })
  t.notOk(events.some(event => event.data === '[DONE]'), 'no [DONE] on this API')
  t.match(lastChat(stack), { stream: true, stream_options: { include_usage: true } })
})

const BASH = { name: 'Bash', description: 'Run a shell command', input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] } }
const READ = { name: 'Read', input_schema: { type: 'object', properties: { path: { type: 'string' } } } }
const calls = [
  { name: 'Bash', arguments: '{"command":"ls -la","description":"List files"}' },
  { name: 'Read', arguments: '{"path":"src/ünï/文件.ts"}' }
]

t.test('stream: tool calls in every upstream style become tool_use blocks, stop_reason tool_use', async t => {
  const stack = await startStack(t)
  for (const style of [{ toolCallQuirks: true }, { toolCallQuirks: false }, { toolCallsNameLate: true }]) {
    stack.sim.setOverride(() => ({ toolCalls: calls, chunkSize: 5, ...style }))
    const res = await post(stack, { model: 'claude-sonnet-5', max_tokens: 4096, stream: true, tools: [BASH, READ, { type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'look around' }] })
    const result = checkGrammar(await readEvents(res))
    const name = JSON.stringify(style)
    t.same(result.problems, [], name)
    t.same(result.blocks.map(block => [block.type, block.name, JSON.parse(block.json!)]), calls.map(call => ['tool_use', call.name, JSON.parse(call.arguments)]), name)
    t.ok(result.blocks.every(block => /^call_/.test(block.id!)), `${name}: the upstream's ids`)
    t.equal(result.stopReason, 'tool_use', name)
  }
  const upstream = lastChat(stack)
  t.same(upstream.tools.map((tool: any) => tool.function.name), ['Bash', 'Read'], 'the server tool was left out')
  t.equal(upstream.parallel_tool_calls, true)
})

t.test('a tool round trip: the ids of tool_use come back in tool_result and reach the upstream unchanged', async t => {
  const stack = await startStack(t)
  stack.sim.setOverride(() => ({ toolCalls: [calls[0]], toolCallQuirks: true }))
  const first = await (await post(stack, { model: 'claude-opus-5-5', max_tokens: 1024, tools: [BASH], tool_choice: { type: 'any', disable_parallel_tool_use: true }, messages: [{ role: 'user', content: 'list files' }] })).json() as any
  t.equal(first.stop_reason, 'tool_use')
  const toolUse = first.content.find((block: any) => block.type === 'tool_use')
  t.match(toolUse, { id: /^call_/, name: 'Bash', input: { command: 'ls -la', description: 'List files' } })
  t.match(lastChat(stack), { tool_choice: 'required', parallel_tool_calls: false })

  stack.sim.setOverride(null)
  const second = await post(stack, {
    model: 'claude-opus-5-5',
    max_tokens: 1024,
    tools: [BASH],
    messages: [
      { role: 'user', content: 'list files' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: [{ type: 'text', text: 'a.ts\nb.ts' }] }, { type: 'text', text: 'and now?' }] }
    ]
  })
  t.equal(second.status, 200)
  const messages = lastChat(stack).messages
  t.same(messages.slice(1), [
    { role: 'assistant', content: '', tool_calls: [{ id: toolUse.id, type: 'function', function: { name: 'Bash', arguments: JSON.stringify(toolUse.input) } }] },
    { role: 'tool', tool_call_id: toolUse.id, content: 'a.ts\nb.ts' },
    { role: 'user', content: 'and now?' }
  ])
  t.equal((await second.json() as any).content[0].text, reply('and now?'))
})

t.test('role "system" inside messages is accepted, string and blocks, and kept in place as a reminder', async t => {
  const stack = await startStack(t)
  const res = await post(stack, {
    model: 'claude-opus-5-5',
    max_tokens: 100,
    messages: [
      { role: 'user', content: 'one' },
      { role: 'system', content: '<system-reminder>context</system-reminder>' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: '' }, { type: 'text', text: 'two' }] },
      { role: 'system', content: [{ type: 'text', text: 'more' }] },
      { role: 'user', content: 'three' }
    ]
  })
  t.equal(res.status, 200)
  t.same(lastChat(stack).messages.map((message: any) => [message.role, message.content]), [
    ['user', 'one'],
    ['user', '<system-reminder>context</system-reminder>'],
    ['assistant', 'two'],
    ['user', '<system-reminder>\nmore\n</system-reminder>'],
    ['user', 'three']
  ], 'Qwen\'s templates take a system message first only: later ones become reminders in place')
})

t.test('ping heartbeats while the upstream is silent: message_start first, then pings, then the answer', async t => {
  const stack = await startStack(t, { env: { HEARTBEAT_INTERVAL_MS: '50' } })
  stack.sim.setOverride(() => ({ ttfbMs: 400, intervalMs: 150 }))
  const events = await readEvents(await post(stack, { model: 'qwen-plus', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'slow one' }] }))
  const result = checkGrammar(events)
  t.same(result.problems, [])
  t.equal(events[0].event, 'message_start')
  const pings = events.filter(event => event.event === 'ping')
  t.ok(pings.length >= 3, `${pings.length} pings`)
  t.ok(pings.every(ping => ping.data === '{"type":"ping"}'))
  t.equal(result.blocks[0].text, reply('slow one'))
})

t.test('count_tokens: an estimate of the translated request, with ?beta=true and without max_tokens', async t => {
  const stack = await startStack(t)
  const small = await post(stack, { model: 'claude-opus-5-5', messages: [{ role: 'user', content: 'hi' }] }, {}, '/messages/count_tokens?beta=true')
  t.equal(small.status, 200)
  const { input_tokens: few } = await small.json() as any
  const large = await post(stack, { model: 'claude-opus-5-5', system: 'x'.repeat(8000), tools: [BASH], messages: [{ role: 'user', content: 'hi' }] }, {}, '/messages/count_tokens')
  const { input_tokens: many } = await large.json() as any
  t.ok(few > 0 && few < 20, `${few}`)
  t.ok(many > 2000 && many < 2200, `${many}`)
  t.equal(chats(stack.sim.requests).length, 0, 'no upstream call')
})

t.test('both auth headers; no key is a 401 in Anthropic\'s envelope; HEAD /api/hello needs none', async t => {
  const stack = await startStack(t, { env: { GATEWAY_API_KEYS: KEY } })
  const body = { model: 'claude-opus-5-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }
  t.equal((await post(stack, body, { 'x-api-key': KEY })).status, 200)
  t.equal((await post(stack, body, { authorization: `Bearer ${KEY}` })).status, 200)
  t.equal((await post(stack, { model: 'm', messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': KEY }, '/messages/count_tokens')).status, 200)
  const refused = await post(stack, body, { 'x-api-key': 'wrong' })
  t.equal(refused.status, 401)
  t.ok(refused.headers.get('request-id'))
  t.match(await refused.json(), { type: 'error', error: { type: 'authentication_error', message: /API key/ }, request_id: refused.headers.get('request-id') })
  const hello = await fetch(`${stack.origin}/api/hello`, { method: 'HEAD' })
  t.ok(hello.status < 300, `HEAD /api/hello: ${hello.status}`)
})

t.test('sessions: x-claude-code-session-id, or metadata.user_id, is the conversation', async t => {
  const stack = await startStack(t)
  const turn = async (headers: Record<string, string>, metadata?: object) => (await post(stack, { model: 'qwen-plus', max_tokens: 10, metadata, messages: [{ role: 'user', content: `prompt ${Math.random()}` }] }, headers)).text()
  await turn({ 'x-claude-code-session-id': 'cc-1' })
  await turn({ 'x-claude-code-session-id': 'cc-1' })
  await turn({}, { user_id: JSON.stringify({ session_id: 'cc-2' }) })
  await turn({}, { user_id: JSON.stringify({ session_id: 'cc-2' }) })
  t.equal(stack.gateway.sessions.active(), 2)
})

t.test('non-streamed with thinking on: asked upstream as a stream (DashScope\'s rule), answered as one JSON message', async t => {
  const stack = await startStack(t)
  stack.sim.setOverride(() => ({ reasoning: 'Plan: call Bash.', toolCalls: [calls[0]], toolCallQuirks: true, usage: { prompt_tokens: 40, completion_tokens: 12, cached_tokens: 8 } }))
  const res = await post(stack, { model: 'qwen-plus', max_tokens: 2000, thinking: { type: 'adaptive' }, tools: [BASH], messages: [{ role: 'user', content: 'list' }] })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const body = await res.json() as any
  t.match(body, {
    type: 'message',
    model: 'qwen-plus',
    content: [
      { type: 'thinking', thinking: 'Plan: call Bash.', signature: /^qg1\./ },
      { type: 'tool_use', id: /^call_/, name: 'Bash', input: JSON.parse(calls[0].arguments) }
    ],
    stop_reason: 'tool_use',
    usage: { input_tokens: 32, output_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 8 }
  })
  t.equal(body.content.length, 2)
  t.match(lastChat(stack), { stream: true, stream_options: { include_usage: true }, enable_thinking: true })

  stack.sim.setOverride(() => ({ midStream: 'event_error' }))
  const failed = await post(stack, { model: 'qwen-plus', max_tokens: 2000, thinking: { type: 'enabled', budget_tokens: 500 }, messages: [{ role: 'user', content: 'x' }] })
  t.equal(failed.status, 429, 'a failure inside the upstream stream is the request\'s HTTP error')
  t.match(await failed.json(), { type: 'error', error: { type: 'rate_limit_error' } })

  stack.sim.setOverride(null)
  await (await post(stack, { model: 'qwen-plus', max_tokens: 20, messages: [{ role: 'user', content: 'x' }] })).text()
  t.notOk('stream' in lastChat(stack), 'without thinking, a plain JSON call')
})

t.test('thinking the gateway signed comes back accepted: its text reaches the upstream as reasoning_content; an empty signature too', async t => {
  const stack = await startStack(t)
  const thought = 'The user wants the capital; Paris, briefly.'
  stack.sim.setOverride(() => ({ reasoning: thought, chunkSize: 7 }))
  const first = await post(stack, { model: 'qwen3-max', max_tokens: 2000, stream: true, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'capital of France?' }] })
  t.equal(first.status, 200)
  const events = await readEvents(first)
  const result = checkGrammar(events)
  t.same(result.problems, [])
  t.same(result.blocks.map(block => block.type), ['thinking', 'text'])
  const [thinking, text] = result.blocks
  t.equal(thinking.thinking, thought)
  const signatures = events.map(event => JSON.parse(event.data)).filter(data => data.delta?.type === 'signature_delta').map(data => data.delta.signature)
  t.equal(signatures.length, 1, 'one signature_delta')
  t.equal(thinking.signature, signatures[0])
  t.match(thinking.signature, /^qg1\./)

  stack.sim.setOverride(null)
  const assistant = { role: 'assistant', content: [{ type: 'thinking', thinking: thinking.thinking, signature: thinking.signature }, { type: 'text', text: text.text }] }
  const history = [{ role: 'user', content: 'capital of France?' }, assistant, { role: 'user', content: 'and of Italy?' }]
  const second = await post(stack, { model: 'qwen3-max', max_tokens: 2000, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: history })
  t.equal(second.status, 200, 'the gateway\'s own signature is accepted')
  t.match(await second.json(), { type: 'message', content: [{ type: 'text', text: reply('and of Italy?') }] })
  const upstream = lastChat(stack)
  t.equal(upstream.model, 'qwen3-max')
  t.same(upstream.messages, [
    { role: 'user', content: 'capital of France?' },
    { role: 'assistant', content: reply('capital of France?'), reasoning_content: thought },
    { role: 'user', content: 'and of Italy?' }
  ], 'the thinking travels as reasoning_content on that assistant message')

  // Claude Code replays thinking it got without a signature with signature "" (wire-apis §2.6); Qwen-Coder has no thinking.
  const unsigned = { ...assistant, content: [{ type: 'thinking', thinking: thought, signature: '' }, { type: 'text', text: text.text }] }
  const coder = await post(stack, { model: 'qwen3-coder-plus', max_tokens: 2000, messages: [history[0], unsigned, history[2]] })
  t.equal(coder.status, 200, 'an empty signature is accepted')
  t.match(await coder.json(), { type: 'message', content: [{ type: 'text', text: reply('and of Italy?') }] })
  const coderUpstream = lastChat(stack)
  t.equal(coderUpstream.model, 'qwen3-coder-plus')
  t.notOk('enable_thinking' in coderUpstream || 'thinking_budget' in coderUpstream, 'no thinking switch for Qwen-Coder')
  t.match(coderUpstream.messages, [{ role: 'user' }, { role: 'assistant', content: reply('capital of France?') }, { role: 'user', content: 'and of Italy?' }])
  t.notOk('reasoning_content' in coderUpstream.messages[1], 'nor the earlier turn\'s reasoning, which a model without thinking has no use for')
})

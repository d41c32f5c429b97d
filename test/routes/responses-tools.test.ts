import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postJson, readEvents, startStack } from '../helper.ts'
import { startSimulator } from '../simulator/index.ts'
import { grammarProblems } from '../unit/responses-grammar.ts'

// Tools and reasoning across turns, as Codex uses them: namespaced tools round-trip with `namespace`, custom
// (free-form) tools answer with custom_tool_call items, hosted tools are accepted and dropped, and reasoning handed
// out as encrypted_content comes back as reasoning_content on a full replay with store:false.

const lastChat = (requests: Array<{ path: string, body: any }>) => requests.filter(request => request.path.endsWith('/chat/completions')).at(-1)!.body

const CODEX_TOOLS = [
  { type: 'function', name: 'shell', description: 'Run a command', parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } } } }, strict: false },
  { type: 'custom', name: 'apply_patch', description: 'Edit files', format: { type: 'grammar', syntax: 'lark', definition: 'start: begin_patch' } },
  { type: 'namespace', name: 'multi_agent_v1', description: 'Agents', tools: [{ type: 'function', name: 'spawn_agent', parameters: { type: 'object', properties: { task: { type: 'string' } } } }] },
  { type: 'web_search' }
]

async function turn (baseURL: string, body: Record<string, unknown>) {
  const res = await postJson(`${baseURL}/responses`, { model: 'qwen3-coder-plus', tools: CODEX_TOOLS, store: false, stream: true, include: ['reasoning.encrypted_content'], ...body })
  const events = await readEvents(res)
  return { events, final: JSON.parse(events.at(-1)!.data) }
}

t.test('a namespaced call round-trips: flattened upstream, name + namespace to the client, flattened again on replay', async t => {
  const { baseURL, sim } = await startStack(t)
  const input = [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'spawn a helper' }] }]
  const first = await turn(baseURL, { input, sim: { toolCalls: [{ name: 'multi_agent_v1__spawn_agent', arguments: '{"task":"tests"}' }] } })
  t.same(grammarProblems(first.events), [])
  const sent = lastChat(sim.requests)
  t.same(sent.tools.map((tool: any) => tool.function.name), ['shell', 'apply_patch', 'multi_agent_v1__spawn_agent'], 'web_search dropped; the namespace flattened')
  t.equal(sent.parallel_tool_calls, true)
  const [call] = first.final.response.output
  t.match(call, { type: 'function_call', name: 'spawn_agent', namespace: 'multi_agent_v1', arguments: '{"task":"tests"}', call_id: /^call_/ })
  const done = first.events.map(event => JSON.parse(event.data)).find(event => event.type === 'response.output_item.done')
  t.match(done.item, { name: 'spawn_agent', namespace: 'multi_agent_v1' }, 'Codex reads the done item: it must carry the namespace')

  await turn(baseURL, { input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: 'agent started' }] })
  const replay = lastChat(sim.requests).messages
  t.same(replay.slice(1), [
    { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'multi_agent_v1__spawn_agent', arguments: '{"task":"tests"}' } }] },
    { role: 'tool', tool_call_id: call.call_id, content: 'agent started' }
  ])
})

t.test('a custom tool: the model\'s {"input"} becomes a custom_tool_call with the raw input, and goes back wrapped', async t => {
  const { baseURL, sim } = await startStack(t)
  const patch = '*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch'
  const first = await turn(baseURL, { input: 'patch it', sim: { chunkSize: 7, toolCalls: [{ name: 'apply_patch', arguments: JSON.stringify({ input: patch }) }] } })
  t.same(grammarProblems(first.events), [])
  const [call] = first.final.response.output
  t.match(call, { type: 'custom_tool_call', id: /^ctc_/, name: 'apply_patch', input: patch, call_id: /^call_/ })
  const inputDone = first.events.map(event => JSON.parse(event.data)).find(event => event.type === 'response.custom_tool_call_input.done')
  t.equal(inputDone.input, patch)

  await turn(baseURL, { input: [{ role: 'user', content: 'patch it' }, call, { type: 'custom_tool_call_output', call_id: call.call_id, output: 'Success' }] })
  t.same(lastChat(sim.requests).messages.slice(1), [
    { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'apply_patch', arguments: JSON.stringify({ input: patch }) } }] },
    { role: 'tool', tool_call_id: call.call_id, content: 'Success' }
  ])
})

t.test('encrypted_content: issued when included, restored to reasoning_content when replayed (Codex: store:false, full history)', async t => {
  const { baseURL, sim } = await startStack(t)
  const first = await turn(baseURL, { model: 'qwen-plus', input: 'think first', reasoning: { effort: 'medium', summary: 'auto' }, sim: { reasoning: 'The private chain of thought.', toolCalls: [{ name: 'shell', arguments: '{"command":["ls"]}' }] } })
  const [reasoning, call] = first.final.response.output
  t.match(reasoning, { type: 'reasoning', id: /^rs_/, summary: [{ type: 'summary_text', text: 'The private chain of thought.' }], encrypted_content: /^qg1\./ })
  t.equal(call.type, 'function_call')

  // Codex keeps the encrypted content and may drop the summary; the token alone restores the reasoning.
  const replayed = { ...reasoning, summary: [] }
  await turn(baseURL, { model: 'qwen-plus', input: [{ role: 'user', content: 'think first' }, replayed, call, { type: 'function_call_output', call_id: call.call_id, output: 'a.txt' }] })
  t.match(lastChat(sim.requests).messages[1], { role: 'assistant', reasoning_content: 'The private chain of thought.', tool_calls: [{ id: call.call_id }] })

  await turn(baseURL, { model: 'qwen-plus', input: [{ role: 'user', content: 'x' }, { type: 'reasoning', summary: [], encrypted_content: 'gAAAAABforeign' }, { role: 'assistant', content: 'y' }, { role: 'user', content: 'z' }] })
  t.same(lastChat(sim.requests).messages[1], { role: 'assistant', content: 'y' }, 'a foreign token is ignored')
})

t.test('a JSON answer with parallel tool calls completes, the namespace restored only where there was one', async t => {
  const { baseURL, sim } = await startStack(t)
  const res = await postJson(`${baseURL}/responses`, { model: 'qwen-plus', input: 'two calls', tools: CODEX_TOOLS, sim: { toolCalls: [{ name: 'shell', arguments: '{"command":["pwd"]}' }, { name: 'multi_agent_v1__spawn_agent', arguments: '{}' }] } })
  const body = await res.json() as any
  t.equal(body.status, 'completed')
  t.match(body.output, [{ type: 'function_call', name: 'shell', status: 'completed' }, { type: 'function_call', name: 'spawn_agent', namespace: 'multi_agent_v1' }])
  t.notOk('namespace' in body.output[0])
  t.equal(sim.requests.length, 1)
})

t.test('replayed reasoning reaches models that think, not those that do not (Qwen-Coder)', async t => {
  const { baseURL, sim } = await startStack(t)
  const input = [{ role: 'user', content: 'q' }, { type: 'reasoning', summary: [{ type: 'summary_text', text: 'earlier thought' }] }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'q2' }]
  await turn(baseURL, { model: 'qwen-plus', input })
  t.equal(lastChat(sim.requests).messages[1].reasoning_content, 'earlier thought')
  await turn(baseURL, { model: 'qwen3-coder-plus', input })
  t.same(lastChat(sim.requests).messages[1], { role: 'assistant', content: 'a' })
})

t.test('an upstream without native tools: calls the model writes as XML become function_call items', async t => {
  const sim = await startSimulator({ models: ['qwen-local'] })
  t.after(() => sim.close())
  const file = join(mkdtempSync(join(tmpdir(), 'qwen-gateway-responses-xml-')), 'gateway.yaml')
  writeFileSync(file, `upstreams:\n  - name: local\n    base_url: ${sim.url}\n    native_tools: false\n`)
  const { baseURL } = await startStack(t, { env: { GATEWAY_CONFIG: file } })
  const modelText = 'Reading.\n<tool_call>\n{"name": "shell", "arguments": {"command": ["cat", "a.txt"]}}\n</tool_call>'
  const { events, final } = await turn(baseURL, { model: 'qwen-local', input: 'read a.txt', sim: { reply: modelText, chunkSize: 5 } })
  t.same(grammarProblems(events), [])
  const upstream = sim.requests.at(-1)!.body
  t.notOk('tools' in upstream, 'the tools went into the system prompt')
  t.match(final.response.output, [
    { type: 'message', content: [{ text: 'Reading.' }] },
    { type: 'function_call', name: 'shell', arguments: '{"command":["cat","a.txt"]}', call_id: /^call_/ }
  ])
  const json = await (await postJson(`${baseURL}/responses`, { model: 'qwen-local', input: 'read a.txt', tools: CODEX_TOOLS, sim: { reply: modelText } })).json() as any
  t.match(json.output, [{ type: 'message' }, { type: 'function_call', name: 'shell' }])
})

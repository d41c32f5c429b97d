import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { payloads, postJson, readEvents, startStack, user } from '../helper.ts'
import { startSimulator } from '../simulator/index.ts'

// An upstream without tool calling (`native_tools: false`): the gateway tells the model about the tools in the
// system prompt and finds its calls in the text.
const tools = [{ type: 'function', function: { name: 'read_file', description: 'Read a file', parameters: { type: 'object', properties: { path: { type: 'string' } } } } }]
const modelText = 'Let me read it first.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "src/文件.ts"}}\n</tool_call>'

async function stackWithoutTools (t: Test) {
  const sim = await startSimulator({ models: ['qwen-local'] })
  t.after(() => sim.close())
  const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-xml-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `upstreams:\n  - name: local\n    base_url: ${sim.url}\n    native_tools: false\n`)
  return { ...(await startStack(t, { env: { GATEWAY_CONFIG: file } })), sim }
}

t.test('tools are described in the system prompt and the history is rewritten for the model', async t => {
  const { baseURL, sim } = await stackWithoutTools(t)
  await (await postJson(`${baseURL}/chat/completions`, {
    model: 'qwen-local',
    messages: [
      { role: 'system', content: 'You are a coding agent.' },
      { role: 'user', content: 'read a.ts' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.ts"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'export {}' }
    ],
    tools,
    tool_choice: 'auto'
  })).text()
  const upstream = sim.requests.at(-1)!.body
  t.notOk('tools' in upstream || 'tool_choice' in upstream, 'no tools field reaches an upstream that cannot take it')
  t.match(upstream.messages[0].content, /^You are a coding agent\.[\s\S]*<tools>[\s\S]*"read_file"[\s\S]*<\/tools>/)
  t.match(upstream.messages[2].content, /<tool_call>[\s\S]*"read_file"[\s\S]*<\/tool_call>/)
  t.match(upstream.messages[3], { role: 'user', content: /<tool_response>\nexport {}\n<\/tool_response>/ })
})

t.test('calls in the streamed text come back as OpenAI tool_calls, the text before them as content', async t => {
  const { baseURL } = await stackWithoutTools(t)
  for (const chunkSize of [1, 3, 7, 1000]) {
    const chunks = payloads(await readEvents(await postJson(`${baseURL}/chat/completions`, {
      model: 'qwen-local', messages: user('read it'), tools, stream: true, sim: { reply: modelText, chunkSize }
    })))
    const content = chunks.map(chunk => chunk.choices[0]?.delta?.content ?? '').join('')
    t.equal(content, 'Let me read it first.', `chunkSize ${chunkSize}: text before the call streamed as content, the call markup not`)
    const calls = chunks.flatMap(chunk => chunk.choices[0]?.delta?.tool_calls ?? [])
    t.match(calls[0], { index: 0, id: /^call_/, type: 'function', function: { name: 'read_file', arguments: '' } })
    t.same(JSON.parse(calls.slice(1).map((call: any) => call.function.arguments).join('')), { path: 'src/文件.ts' })
    t.equal(chunks.findLast(chunk => chunk.choices.length > 0).choices[0].finish_reason, 'tool_calls')
  }
})

t.test('the official SDK sees native tool calls, streamed and not', async t => {
  const { baseURL } = await stackWithoutTools(t)
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
  const params = { model: 'qwen-local', messages: [{ role: 'user' as const, content: 'read it' }], tools: tools as any, ...({ sim: { reply: modelText, chunkSize: 5 } } as object) }
  const streamed = await client.chat.completions.stream(params).finalChatCompletion()
  const json = await client.chat.completions.create(params)
  for (const answer of [streamed, json]) {
    const call = answer.choices[0].message.tool_calls![0]
    t.equal(answer.choices[0].finish_reason, 'tool_calls')
    t.equal(call.type === 'function' && call.function.name, 'read_file')
    t.same(JSON.parse(call.type === 'function' ? call.function.arguments : ''), { path: 'src/文件.ts' })
    t.equal(answer.choices[0].message.content, 'Let me read it first.')
  }
})

t.test('without tools in the request, text with such tags is left alone', async t => {
  const { baseURL } = await stackWithoutTools(t)
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-local', messages: user('x'), sim: { reply: modelText } })
  t.equal(((await res.json()) as any).choices[0].message.content, modelText)
})

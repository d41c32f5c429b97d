import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { postJson, readEvents, startStack } from '../helper.ts'
import { startSimulator } from '../simulator/index.ts'
import { checkGrammar } from '../unit/messages-grammar.ts'

// /v1/messages over the pipeline's other paths: an upstream without native tool calling (the XML protocol), and a
// client that leaves mid-answer.

const READ = { name: 'read_file', description: 'Read a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } }
const modelText = 'Let me read it first.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "src/文件.ts"}}\n</tool_call>'

async function stackWithoutTools (t: Test) {
  const sim = await startSimulator({ models: ['qwen-local'] })
  t.after(() => sim.close())
  const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-messages-xml-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `upstreams:\n  - name: local\n    base_url: ${sim.url}\n    native_tools: false\n`)
  return { ...(await startStack(t, { env: { GATEWAY_CONFIG: file } })), sim }
}

t.test('an upstream without native tools: tools go in the prompt, the XML call comes back as a tool_use block', async t => {
  const { baseURL, sim } = await stackWithoutTools(t)
  sim.setOverride(() => ({ reply: modelText, chunkSize: 7 }))
  const request = {
    model: 'qwen-local',
    max_tokens: 1000,
    system: 'You are a coding agent.',
    tools: [READ],
    messages: [
      { role: 'user', content: 'read a.ts' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'read_file', input: { path: 'a.ts' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'export {}' }] }
    ]
  }
  const streamed = checkGrammar(await readEvents(await postJson(`${baseURL}/messages`, { ...request, stream: true })))
  t.same(streamed.problems, [])
  t.same(streamed.blocks.map(block => block.type), ['text', 'tool_use'])
  t.equal(streamed.blocks[0].text, 'Let me read it first.')
  t.match(streamed.blocks[1], { name: 'read_file', id: /^call_/ })
  t.same(JSON.parse(streamed.blocks[1].json!), { path: 'src/文件.ts' })
  t.equal(streamed.stopReason, 'tool_use')

  const upstream = sim.requests.at(-1)!.body
  t.notOk('tools' in upstream, 'no tools field for an upstream that cannot take it')
  t.match(upstream.messages[0].content, /^You are a coding agent\.[\s\S]*<tools>[\s\S]*"read_file"/)
  t.match(upstream.messages[3], { role: 'user', content: /<tool_response>\nexport {}\n<\/tool_response>/ })

  const json = await (await postJson(`${baseURL}/messages`, request)).json() as any
  t.match(json.content, [{ type: 'text', text: 'Let me read it first.' }, { type: 'tool_use', name: 'read_file', input: { path: 'src/文件.ts' } }])
  t.equal(json.stop_reason, 'tool_use')
})

t.test('a client leaving mid-stream aborts the upstream request; a finished one never is', async t => {
  const stack = await startStack(t)
  stack.sim.setOverride(() => ({ intervalMs: 50 }))
  const res = await postJson(`${stack.baseURL}/messages`, { model: 'qwen-plus', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'one two three four five six seven' }] })
  const reader = res.body!.getReader()
  await reader.read()
  const closed = stack.sim.waitFor('client-closed', 2000)
  await reader.cancel()
  t.ok(await closed, 'the upstream saw the gateway hang up')

  stack.sim.setOverride(() => ({ ttfbMs: 400 }))
  const json = await postJson(`${stack.baseURL}/messages`, { model: 'qwen-plus', max_tokens: 100, messages: [{ role: 'user', content: 'slow' }] })
  t.equal(json.status, 200)
  t.equal((await json.json() as any).type, 'message')
})

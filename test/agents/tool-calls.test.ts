import t from 'tap'
import OpenAI from 'openai'
import { payloads, postJson, readEvents, startStack, user } from '../helper.ts'

const tools = [
  { type: 'function', function: { name: 'read_file', strict: true, parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false } } },
  { type: 'function', function: { name: 'search_files', parameters: { type: 'object', properties: { regex: { type: 'string' }, path: { type: 'string' } } } } }
]
const meant = [
  { name: 'read_file', arguments: JSON.stringify({ path: 'src/ünï/文件.ts' }) },
  { name: 'search_files', arguments: JSON.stringify({ regex: 'TODO\\(\\w+\\)', path: '.' }) }
]
const styles: Array<[string, object]> = [
  ['DashScope quirks', { toolCallQuirks: true }],
  ['OpenAI shape', { toolCallQuirks: false }],
  ['name and id arriving late', { toolCallsNameLate: true }]
]
const request = (sim: object, extra: object = {}) => ({
  model: 'qwen-plus',
  messages: user('find the TODOs'),
  tools,
  tool_choice: 'auto',
  parallel_tool_calls: true,
  sim: { toolCalls: meant, chunkSize: 4, ...sim },
  ...extra
})

t.test('streamed tool calls reach the client in the canonical delta shape', async t => {
  const { baseURL } = await startStack(t)
  for (const [style, sim] of styles) {
    const chunks = payloads(await readEvents(await postJson(`${baseURL}/chat/completions`, request(sim, { stream: true }))))
    const seen = new Set<number>()
    const args = ['', '']
    for (const chunk of chunks) {
      for (const choice of chunk.choices) {
        t.ok('finish_reason' in choice && 'logprobs' in choice, `${style}: every choice has finish_reason and logprobs`)
        for (const call of choice.delta.tool_calls ?? []) {
          if (!seen.has(call.index)) {
            seen.add(call.index)
            t.match(call, { index: Number, id: /^call_/, type: 'function', function: { name: meant[call.index].name, arguments: '' } }, `${style}: first delta of index ${call.index}`)
          } else {
            t.same(Object.keys(call).sort(), ['function', 'index'], `${style}: later deltas carry index and arguments only`)
            t.same(Object.keys(call.function), ['arguments'])
            t.type(call.function.arguments, 'string')
            t.not(call.function.arguments, '', 'no empty fragments')
            args[call.index] += call.function.arguments
          }
        }
      }
    }
    t.same(args, meant.map(call => call.arguments), `${style}: fragments join to what the model meant`)
    const finishes = chunks.flatMap(chunk => chunk.choices.filter((c: any) => c.finish_reason !== null).map((c: any) => c.finish_reason))
    t.same(finishes, ['tool_calls'], `${style}: exactly one finish_reason, tool_calls`)
  }
})

t.test('the official SDK\'s stream helper gets complete tool calls that parse as JSON', async t => {
  const { baseURL } = await startStack(t)
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
  for (const [style, sim] of styles) {
    const stream = client.chat.completions.stream(request(sim) as any)
    const final = await stream.finalChatCompletion()
    const calls = final.choices[0].message.tool_calls ?? []
    t.equal(final.choices[0].finish_reason, 'tool_calls', style)
    t.same(calls.map(call => call.type === 'function' ? [call.function.name, JSON.parse(call.function.arguments)] : null),
      meant.map(call => [call.name, JSON.parse(call.arguments)]), `${style}: names and arguments`)
    t.ok(calls.every(call => /^call_/.test(call.id)), `${style}: ids`)
  }
})

t.test('non-streamed tool calls get the same normalisation', async t => {
  const { baseURL, sim } = await startStack(t)
  const res = await postJson(`${baseURL}/chat/completions`, request({}))
  const body = (await res.json()) as any
  const message = body.choices[0].message
  t.equal(body.choices[0].finish_reason, 'tool_calls')
  t.same(message.tool_calls.map((call: any) => ({ name: call.function.name, arguments: call.function.arguments })), meant)
  t.ok(message.tool_calls.every((call: any) => call.type === 'function' && /^call_/.test(call.id)))
  const upstream = sim.requests.at(-1)!.body
  t.same(upstream.tools, tools, 'tools reach the upstream as sent, strict included')
  t.equal(upstream.parallel_tool_calls, true, 'parallel_tool_calls forwarded (DashScope defaults to false)')
  t.equal(upstream.tool_choice, 'auto')
})

t.test('tool history (assistant tool_calls and tool results) passes through untouched', async t => {
  const { baseURL, sim } = await startStack(t)
  const messages = [
    { role: 'system', content: [{ type: 'text', text: 'You are Roo.', cache_control: { type: 'ephemeral' } }] },
    { role: 'user', content: 'read a.ts' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.ts"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'export const a = 1' }
  ]
  const raw = JSON.stringify({ model: 'qwen-plus', messages, tools, stream: true, stream_options: { include_usage: true } })
  const res = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw })
  await res.text()
  t.equal(sim.requests.at(-1)!.raw, raw, 'byte for byte')
})

import t from 'tap'
import { createReasoningSealer, reasoningKey } from '../../src/adapters/responses/reasoning-token.ts'
import { responseSetup } from '../../src/adapters/responses/response.ts'
import { ResponsesEventWriter } from '../../src/adapters/responses/stream-writer.ts'
import { chatTools } from '../../src/adapters/responses/tools.ts'
import type { ResponseObject } from '../../src/adapters/responses/types.ts'
import { GatewayError } from '../../src/errors.ts'
import { framesOf, grammarProblems } from './responses-grammar.ts'

const sealer = createReasoningSealer(reasoningKey('s', []))
const USAGE = { prompt_tokens: 31, completion_tokens: 22, total_tokens: 53, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 12 } }

function writer (body: Record<string, any> = {}, options: { now?: () => number } = {}) {
  const full: Record<string, any> & { model: string } = { model: 'qwen3.6-plus', ...body }
  const finals: ResponseObject[] = []
  const w = new ResponsesEventWriter(responseSetup(full, chatTools(full.tools).names, sealer, 'core1'), { onFinal: response => finals.push(response), keepaliveAfterMs: 1000, ...options })
  return { w, finals }
}

const delta = (fields: Record<string, unknown>, finish: string | null = null) => ({ id: 'c', choices: [{ index: 0, delta: fields, finish_reason: finish }] })
const usageChunk = { id: 'c', choices: [], usage: USAGE }
const events = (text: string) => framesOf(text).map(frame => JSON.parse(frame.data))
const types = (text: string) => events(text).map(event => event.type)

t.test('reasoning then text with a summary: the §1.5 example, event for event', async t => {
  const { w, finals } = writer({ reasoning: { summary: 'auto' }, include: ['reasoning.encrypted_content'] })
  const text = w.chunk(delta({ role: 'assistant', reasoning_content: 'User greets; ' })) + w.chunk(delta({ reasoning_content: 'reply briefly.' })) +
    w.chunk(delta({ content: 'Hi ' })) + w.chunk(delta({ content: 'there!' }, 'stop')) + w.chunk(usageChunk) + w.end()
  t.same(grammarProblems(framesOf(text)), [])
  t.same(types(text), [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.reasoning_summary_part.added', 'response.reasoning_summary_text.delta', 'response.reasoning_summary_text.delta',
    'response.reasoning_summary_text.done', 'response.reasoning_summary_part.done', 'response.output_item.done',
    'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
    'response.completed'
  ])
  const all = events(text)
  t.match(all[2], { output_index: 0, item: { type: 'reasoning', id: 'rs_core1_0', summary: [] } })
  t.same(all[3].part, { type: 'summary_text', text: '' })
  t.match(all[8].item, { type: 'reasoning', id: 'rs_core1_0', summary: [{ type: 'summary_text', text: 'User greets; reply briefly.' }], encrypted_content: /^qg1\./ })
  t.equal(sealer.open(all[8].item.encrypted_content), 'User greets; reply briefly.', 'the token holds the reasoning')
  t.match(all[9], { output_index: 1, item: { type: 'message', id: 'msg_core1_1', role: 'assistant', status: 'in_progress', content: [] } })
  t.same(all[10].part, { type: 'output_text', text: '', annotations: [], logprobs: [] })
  t.same(all[11], { type: 'response.output_text.delta', sequence_number: 11, item_id: 'msg_core1_1', output_index: 1, content_index: 0, delta: 'Hi ', logprobs: [] })
  t.same(all[15].item, { type: 'message', id: 'msg_core1_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hi there!', annotations: [], logprobs: [] }] })
  const done = all[16].response
  t.match(done, { id: 'resp_core1', object: 'response', status: 'completed', model: 'qwen3.6-plus', error: null, incomplete_details: null })
  t.same(done.output, [all[8].item, all[15].item], 'the whole output in the terminal event')
  t.same(done.usage, { input_tokens: 31, input_tokens_details: { cached_tokens: 4, cache_write_tokens: 0 }, output_tokens: 22, output_tokens_details: { reasoning_tokens: 12 }, total_tokens: 53 })
  t.equal(finals.length, 1)
  t.same(finals[0], done, 'the final response is handed over for storing')
  t.match(text, /^event: response\.created\ndata: \{"type":"response\.created","sequence_number":0,/)
})

t.test('reasoning without a summary requested goes out as reasoning_text content', async t => {
  const { w } = writer()
  const text = w.chunk(delta({ reasoning_content: 'think' })) + w.chunk(delta({ content: 'ok' }, 'stop')) + w.end()
  t.same(grammarProblems(framesOf(text)), [])
  const all = events(text)
  t.match(all[2].item, { type: 'reasoning', summary: [], content: [] })
  t.same(all[3].part, { type: 'reasoning_text', text: '' })
  t.match(all[4], { type: 'response.reasoning_text.delta', content_index: 0, delta: 'think' })
  t.same(all[7].item, { type: 'reasoning', id: 'rs_core1_0', summary: [], content: [{ type: 'reasoning_text', text: 'think' }] }, 'no encrypted_content unless included')
})

t.test('reasoning that resumes after text opens a new reasoning item', async t => {
  const { w } = writer({ reasoning: { summary: 'auto' } })
  const text = w.chunk(delta({ reasoning_content: 'a' })) + w.chunk(delta({ content: 'b' })) + w.chunk(delta({ reasoning_content: 'c' })) + w.chunk(delta({ content: 'd' }, 'stop')) + w.end()
  t.same(grammarProblems(framesOf(text)), [])
  const final = events(text).at(-1).response
  t.same(final.output.map((item: any) => item.id), ['rs_core1_0', 'msg_core1_1', 'rs_core1_2', 'msg_core1_3'])
})

t.test('tool calls: added with empty arguments, argument deltas, done with the whole string; parallel calls are consecutive items', async t => {
  const { w } = writer({ tools: [{ type: 'function', name: 'ls' }, { type: 'function', name: 'cat' }] })
  const call = (index: number, id: string, name: string) => delta({ tool_calls: [{ index, id, type: 'function', function: { name, arguments: '' } }] })
  const frag = (index: number, args: string) => delta({ tool_calls: [{ index, function: { arguments: args } }] })
  const text = w.chunk(delta({ content: 'Let me look.' })) + w.chunk(call(0, 'call_X', 'ls')) + w.chunk(frag(0, '{"p":')) + w.chunk(frag(0, '"."}')) +
    w.chunk(call(1, 'call_Y', 'cat')) + w.chunk(frag(1, '{}')) + w.chunk(delta({}, 'tool_calls')) + w.chunk(usageChunk) + w.end()
  t.same(grammarProblems(framesOf(text)), [])
  const all = events(text)
  t.match(all.find(event => event.type === 'response.output_item.added' && event.item.type === 'function_call').item,
    { type: 'function_call', id: 'fc_core1_1', call_id: 'call_X', name: 'ls', arguments: '', status: 'in_progress' })
  t.same(all.filter(event => event.type === 'response.function_call_arguments.delta' && event.output_index === 1).map(event => event.delta), ['{"p":', '"."}'])
  t.match(all.find(event => event.type === 'response.function_call_arguments.done' && event.output_index === 1), { item_id: 'fc_core1_1', arguments: '{"p":"."}' })
  const final = all.at(-1)
  t.equal(final.type, 'response.completed', 'tool calls complete the response')
  t.same(final.response.output.slice(1), [
    { type: 'function_call', id: 'fc_core1_1', call_id: 'call_X', name: 'ls', arguments: '{"p":"."}', status: 'completed' },
    { type: 'function_call', id: 'fc_core1_2', call_id: 'call_Y', name: 'cat', arguments: '{}', status: 'completed' }
  ])
  t.notOk(final.response.output.some((item: any) => 'namespace' in item), 'no namespace on top-level functions')
})

t.test('namespaced calls carry name and namespace; custom tool calls stream their unwrapped input', async t => {
  const { w } = writer({
    tools: [
      { type: 'namespace', name: 'multi_agent_v1', tools: [{ type: 'function', name: 'spawn_agent' }] },
      { type: 'custom', name: 'apply_patch' }
    ]
  })
  const text = w.chunk(delta({ tool_calls: [{ index: 0, id: 'call_N', type: 'function', function: { name: 'multi_agent_v1__spawn_agent', arguments: '' } }] })) +
    w.chunk(delta({ tool_calls: [{ index: 0, function: { arguments: '{"task":"x"}' } }] })) +
    w.chunk(delta({ tool_calls: [{ index: 1, id: 'call_C', type: 'function', function: { name: 'apply_patch', arguments: '' } }] })) +
    w.chunk(delta({ tool_calls: [{ index: 1, function: { arguments: '{"input":"*** Begin' } }] })) +
    w.chunk(delta({ tool_calls: [{ index: 1, function: { arguments: ' Patch"}' } }] }, 'tool_calls')) + w.end()
  t.same(grammarProblems(framesOf(text)), [])
  const all = events(text)
  t.same(all.at(-1).response.output, [
    { type: 'function_call', id: 'fc_core1_0', call_id: 'call_N', name: 'spawn_agent', namespace: 'multi_agent_v1', arguments: '{"task":"x"}', status: 'completed' },
    { type: 'custom_tool_call', id: 'ctc_core1_1', call_id: 'call_C', name: 'apply_patch', input: '*** Begin Patch' }
  ])
  t.same(all.filter(event => event.output_index === 1 && event.type.startsWith('response.custom_tool_call_input')).map(event => [event.type, event.delta ?? event.input]),
    [['response.custom_tool_call_input.delta', '*** Begin Patch'], ['response.custom_tool_call_input.done', '*** Begin Patch']])
  t.notOk(all.some(event => event.type === 'response.function_call_arguments.delta' && event.output_index === 1), 'no function-call events for a custom tool')
})

t.test('length → response.incomplete with max_output_tokens and usage; content_filter → reason content_filter', async t => {
  for (const [finish, reason] of [['length', 'max_output_tokens'], ['content_filter', 'content_filter']]) {
    const { w } = writer()
    const text = w.chunk(delta({ content: 'cut' }, finish)) + w.chunk(usageChunk) + w.end()
    t.same(grammarProblems(framesOf(text)), [])
    const last = events(text).at(-1)
    t.equal(last.type, 'response.incomplete')
    t.match(last.response, { status: 'incomplete', incomplete_details: { reason }, usage: { output_tokens: 22 } })
    t.equal(last.response.output[0].status, 'incomplete')
  }
})

t.test('a failure mid-stream → response.failed with error code, partial output and known usage; open items are not done', async t => {
  const cases: Array<[GatewayError, string, RegExp?]> = [
    [new GatewayError({ statusCode: 400, message: 'Range of input length should be [1, 129024]', errorType: 'upstream_context_length' }), 'context_length_exceeded'],
    [new GatewayError({ statusCode: 429, message: 'Quota exceeded', type: 'insufficient_quota', errorType: 'upstream_quota' }), 'insufficient_quota'],
    [new GatewayError({ statusCode: 429, message: 'Requests rate limit exceeded.', errorType: 'upstream_rate_limit', headers: { 'retry-after': '7' } }), 'rate_limit_exceeded', /try again in 7s/],
    [new GatewayError({ statusCode: 502, message: 'connection lost', errorType: 'upstream_network' }), 'server_error'],
    [new GatewayError({ statusCode: 400, message: 'Input data may contain inappropriate content.', code: 'data_inspection_failed', errorType: 'upstream_content_filter' }), 'invalid_prompt']
  ]
  for (const [error, code, message] of cases) {
    const { w, finals } = writer({ tools: [{ type: 'function', name: 'ls' }] })
    const text = w.chunk(delta({ content: 'partial' })) + w.chunk(usageChunk) +
      w.chunk(delta({ tool_calls: [{ index: 0, id: 'call_Z', type: 'function', function: { name: 'ls', arguments: '{"half' } }] })) + w.fail(error)
    t.same(grammarProblems(framesOf(text)), [], code)
    const all = events(text)
    t.notOk(all.some(event => event.type === 'response.output_item.done' && event.output_index === 1), `${code}: a half-written call is never done`)
    const last = all.at(-1)
    t.equal(last.type, 'response.failed')
    t.match(last.response, { status: 'failed', error: { code, message: message ?? error.message }, usage: { input_tokens: 31 } })
    t.match(last.response.output, [{ type: 'message', status: 'completed', content: [{ text: 'partial' }] }, { type: 'function_call', arguments: '{"half', status: 'incomplete' }])
    t.equal(finals[0].status, 'failed')
  }
})

t.test('a failure before anything was written still sends created and in_progress first; usage is zero, never missing', async t => {
  const { w } = writer()
  const text = w.fail(new GatewayError({ statusCode: 504, message: 'timeout' }))
  t.same(grammarProblems(framesOf(text)), [])
  t.same(types(text), ['response.created', 'response.in_progress', 'response.failed'])
  t.same(events(text)[2].response.usage, { input_tokens: 0, input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 }, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 0 })
})

t.test('heartbeats: the first opens the response, then comments, then a keepalive event after a long silence', async t => {
  let clock = 0
  const { w } = writer({}, { now: () => clock })
  t.same(types(w.heartbeat()), ['response.created', 'response.in_progress'], 'clients (openai-node) need response.created before anything else')
  clock = 500
  t.equal(w.heartbeat(), ': keep-alive\n\n')
  clock = 1000
  const keepalive = w.heartbeat()
  t.equal(keepalive, 'event: keepalive\ndata: {"type":"keepalive","sequence_number":2}\n\n')
  clock = 1500
  t.equal(w.heartbeat(), ': keep-alive\n\n', 'the keepalive reset the silence')
  const text = w.chunk(delta({ content: 'x' }, 'stop')) + w.end()
  t.equal(events(text)[0].sequence_number, 3, 'sequence numbers continue after the keepalive')
})

t.test('an answer with no text, no reasoning and no calls completes with an empty output', async t => {
  const { w } = writer()
  const text = w.chunk(delta({ role: 'assistant', content: '' })) + w.chunk(delta({}, 'stop')) + w.end()
  t.same(grammarProblems(framesOf(text)), [])
  t.same(events(text).at(-1).response.output, [])
})

t.test('text still open when the stream fails is in the output as incomplete, without a done event', async t => {
  const { w } = writer()
  const text = w.chunk(delta({ content: 'half a sent' })) + w.fail(new GatewayError({ statusCode: 502, message: 'lost' }))
  t.same(grammarProblems(framesOf(text)), [])
  t.notOk(types(text).includes('response.output_item.done'))
  t.match(events(text).at(-1).response.output, [{ type: 'message', id: 'msg_core1_0', status: 'incomplete', content: [{ type: 'output_text', text: 'half a sent', annotations: [] }] }])
})

t.test('whitespace before a tool call opens no message; an answer of whitespace alone is still sent', async t => {
  const { w } = writer({ tools: [{ type: 'function', name: 'ls' }] })
  const text = w.chunk(delta({ content: '\n\n' })) + w.chunk(delta({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'ls', arguments: '{}' } }] }, 'tool_calls')) + w.end()
  t.same(grammarProblems(framesOf(text)), [])
  t.same(events(text).at(-1).response.output.map((item: any) => item.type), ['function_call'])

  const leading = writer()
  const kept = leading.w.chunk(delta({ content: '\n' })) + leading.w.chunk(delta({ content: 'Hi' }, 'stop')) + leading.w.end()
  t.equal(events(kept).at(-1).response.output[0].content[0].text, '\nHi', 'held whitespace goes out with the text that follows')

  const blank = writer()
  const only = blank.w.chunk(delta({ content: ' ' }, 'stop')) + blank.w.end()
  t.same(grammarProblems(framesOf(only)), [])
  t.equal(events(only).at(-1).response.output[0].content[0].text, ' ')
})

t.test('the grammar checker accepts a keepalive mid-stream and flags any event type outside §1.5', async t => {
  let clock = 0
  const { w } = writer({}, { now: () => clock })
  let text = w.heartbeat()
  clock = 1000
  text += w.heartbeat() + w.chunk(delta({ content: 'x' }, 'stop')) + w.end()
  t.ok(types(text).includes('keepalive'))
  t.same(grammarProblems(framesOf(text)), [], 'keepalive is part of the grammar')

  const invented = framesOf(text).map(frame => {
    const event = JSON.parse(frame.data)
    if (event.type !== 'keepalive') return frame
    return { event: 'response.heartbeat', data: JSON.stringify({ ...event, type: 'response.heartbeat' }) }
  })
  t.same(grammarProblems(invented), ['event 2 (response.heartbeat): not an event type of the grammar'])
  const unknownDelta = framesOf(text).map(frame => {
    const event = JSON.parse(frame.data)
    if (event.type !== 'response.output_text.delta') return frame
    return { event: 'response.output_text.annotation.added', data: JSON.stringify({ ...event, type: 'response.output_text.annotation.added' }) }
  })
  t.match(grammarProblems(unknownDelta), [/response\.output_text\.annotation\.added\): not an event type of the grammar/])
})

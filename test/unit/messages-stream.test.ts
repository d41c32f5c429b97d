import t from 'tap'
import { StreamTransforms, type Chunk } from '../../src/adapters/chunk-transforms.ts'
import { MessagesEventWriter } from '../../src/adapters/messages/stream-writer.ts'
import { GatewayError } from '../../src/errors.ts'
import { checkGrammar, parseFrames } from './messages-grammar.ts'

// The writer behind the pipeline's own chunk transforms (tool-call normalisation), fed chat chunks as DashScope
// sends them, and its output checked against the §2.5 grammar.

const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'qwen3-coder-plus' }
const delta = (d: Record<string, unknown>, finish: string | null = null): Chunk => ({ ...base, choices: [{ index: 0, delta: d, finish_reason: finish }] })
const usage = (u: Record<string, unknown>): Chunk => ({ ...base, choices: [], usage: u as any })
const call = (index: number, id: string, name: string | undefined, args: string | null) =>
  delta({ content: null, tool_calls: [{ index, id, type: 'function', function: name === undefined ? { arguments: args } : { name, arguments: args } }] })

function run (chunks: Chunk[], options: { showThinking?: boolean, end?: 'end' | GatewayError } = {}) {
  const writer = new MessagesEventWriter({ model: 'claude-opus-5-5', requestId: 'req-1', showThinking: options.showThinking ?? true })
  const transforms = new StreamTransforms({ thinkTags: false, xmlTools: null })
  let out = ''
  for (const chunk of chunks) for (const part of transforms.apply(structuredClone(chunk))) out += writer.chunk(part)
  out += options.end instanceof GatewayError ? writer.fail(options.end) : writer.end()
  const frames = parseFrames(out)
  return { out, frames, ...checkGrammar(frames) }
}

t.test('thinking, then text: a thinking block with a signature, then a text block', async t => {
  const result = run([
    delta({ role: 'assistant', content: null, reasoning_content: 'Need ' }),
    delta({ content: null, reasoning_content: 'to greet.' }),
    delta({ content: '\n\n', reasoning_content: null }),
    delta({ content: 'Hi ', reasoning_content: null }),
    delta({ content: 'there!', reasoning_content: null }),
    delta({ content: '' }, 'stop'),
    usage({ prompt_tokens: 31, completion_tokens: 22, total_tokens: 53, completion_tokens_details: { reasoning_tokens: 12 } })
  ])
  t.same(result.problems, [])
  t.same(result.blocks.map(block => block.type), ['thinking', 'text'])
  t.equal(result.blocks[0].thinking, 'Need to greet.')
  t.match(result.blocks[0].signature, /^qg1\./)
  t.equal(result.blocks[1].text, 'Hi there!', 'the whitespace-only fragment between them opens no block')
  t.equal(result.stopReason, 'end_turn')
  t.same(result.usage, { input_tokens: 31, output_tokens: 22, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })
  t.same(result.frames.map(frame => frame.event).slice(0, 2), ['message_start', 'content_block_start'])
  t.same(result.frames.map(frame => frame.event).slice(-2), ['message_delta', 'message_stop'])
})

t.test('a tool call in DashScope\'s shape: args in the first chunk, id:"" continuations, a trailing null fragment', async t => {
  const result = run([
    delta({ role: 'assistant', content: '' }),
    call(0, 'call_30fb8bdcce274fbfbb8bd4', 'Bash', '{"command":'),
    call(0, '', undefined, '"ls",'),
    call(0, '', undefined, '"description":"List files"}'),
    call(0, '', undefined, null),
    delta({}, 'tool_calls'),
    usage({ prompt_tokens: 2410, completion_tokens: 38, prompt_tokens_details: { cached_tokens: 1800 } })
  ])
  t.same(result.problems, [])
  t.equal(result.blocks.length, 1, 'continuations are not new calls')
  t.match(result.blocks[0], { type: 'tool_use', id: 'call_30fb8bdcce274fbfbb8bd4', name: 'Bash', json: '{"command":"ls","description":"List files"}' })
  t.equal(result.stopReason, 'tool_use')
  t.same(result.usage, { input_tokens: 610, output_tokens: 38, cache_creation_input_tokens: 0, cache_read_input_tokens: 1800 })
  const starts = result.frames.filter(frame => frame.event === 'content_block_start').map(frame => JSON.parse(frame.data).content_block)
  t.same(starts, [{ type: 'tool_use', id: 'call_30fb8bdcce274fbfbb8bd4', name: 'Bash', input: {} }])
})

t.test('a tool call after text closes the text block; finish "stop" still means tool_use', async t => {
  const result = run([
    delta({ role: 'assistant', content: 'Let me look.' }),
    call(0, 'call_a', 'Read', '{"path":"a.ts"}'),
    delta({}, 'stop')
  ])
  t.same(result.problems, [])
  t.same(result.blocks.map(block => block.type), ['text', 'tool_use'])
  t.equal(result.stopReason, 'tool_use')
  t.same(result.usage, { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }, 'no usage chunk: zeros, never missing')
})

t.test('sequential parallel calls each stream live in their own block', async t => {
  const result = run([
    call(0, 'call_a', 'Read', '{"path":'),
    call(0, '', undefined, '"a.ts"}'),
    call(1, 'call_b', 'Read', '{"path":'),
    call(1, '', undefined, '"b.ts"}'),
    delta({}, 'tool_calls')
  ])
  t.same(result.problems, [])
  t.same(result.blocks.map(block => [block.id, block.json]), [['call_a', '{"path":"a.ts"}'], ['call_b', '{"path":"b.ts"}']])
  // Block 0's delta came before block 1 started: live, not buffered to the end.
  const events = result.frames.map(frame => JSON.parse(frame.data))
  const firstArgsOf1 = events.findIndex(event => event.type === 'content_block_delta' && event.index === 1)
  const stopOf0 = events.findIndex(event => event.type === 'content_block_stop' && event.index === 0)
  t.ok(stopOf0 < firstArgsOf1)
})

t.test('interleaved parallel calls are buffered, never reopened, and each block gets whole arguments', async t => {
  const result = run([
    call(0, 'call_a', 'Read', '{"pa'),
    call(1, 'call_b', 'Grep', '{"pat'),
    call(0, '', undefined, 'th":"a.ts"}'),
    call(1, '', undefined, 'tern":"TODO"}'),
    call(2, 'call_c', 'Glob', ''),
    call(2, '', undefined, '{"glob":"*.ts"}'),
    delta({}, 'tool_calls')
  ])
  t.same(result.problems, [])
  t.same(result.blocks.map(block => [block.id, block.name, block.json]), [
    ['call_a', 'Read', '{"path":"a.ts"}'],
    ['call_b', 'Grep', '{"pattern":"TODO"}'],
    ['call_c', 'Glob', '{"glob":"*.ts"}']
  ])
  t.equal(result.stopReason, 'tool_use')
})

t.test('reasoning after text opens a new thinking block; text after a tool call a new text block', async t => {
  const result = run([
    delta({ reasoning_content: 'first' }),
    delta({ content: 'Some text.' }),
    delta({ reasoning_content: 'second thoughts' }),
    call(0, 'call_a', 'Bash', '{"command":"ls"}'),
    delta({ content: 'after the call' }),
    delta({}, 'stop')
  ])
  t.same(result.problems, [])
  t.same(result.blocks.map(block => block.type), ['thinking', 'text', 'thinking', 'tool_use', 'text'])
  t.ok(result.blocks.filter(block => block.type === 'thinking').every(block => block.signature !== ''), 'each thinking block signed')
})

t.test('length → max_tokens (even with a call cut short); content_filter → refusal', async t => {
  t.equal(run([delta({ content: 'trunc' }, 'length')]).stopReason, 'max_tokens')
  t.equal(run([call(0, 'call_a', 'Bash', '{"comm'), delta({}, 'length')]).stopReason, 'max_tokens')
  t.equal(run([delta({ content: 'no' }, 'content_filter')]).stopReason, 'refusal')
})

t.test('cache usage: input_tokens excludes cached and cache-written tokens', async t => {
  const result = run([delta({ content: 'x' }, 'stop'), usage({ prompt_tokens: 100, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 30, cache_creation_input_tokens: 10 } })])
  t.same(result.usage, { input_tokens: 60, output_tokens: 5, cache_creation_input_tokens: 10, cache_read_input_tokens: 30 })
})

t.test('thinking display "omitted": no thinking blocks', async t => {
  const result = run([delta({ reasoning_content: 'hidden' }), delta({ content: 'shown' }, 'stop')], { showThinking: false })
  t.same(result.problems, [])
  t.same(result.blocks.map(block => block.type), ['text'])
})

t.test('only whitespace or nothing: no empty text block, still a complete message', async t => {
  const result = run([delta({ role: 'assistant', content: '' }), delta({ content: '  \n' }), delta({ content: '' }, 'stop')])
  t.same(result.problems, [])
  t.same(result.blocks, [])
  t.equal(result.stopReason, 'end_turn')
})

t.test('a failure mid-stream ends with event: error in Anthropic\'s envelope, after what was sent', async t => {
  const error = new GatewayError({ statusCode: 429, message: 'Allocated quota exceeded', type: 'insufficient_quota', errorType: 'upstream_quota', source: 'upstream' })
  const result = run([delta({ content: 'partial ' })], { end: error })
  t.same(result.problems, [])
  t.equal(result.frames.at(-1)?.event, 'error')
  t.same(result.error, { type: 'error', error: { type: 'rate_limit_error', message: 'Allocated quota exceeded' }, request_id: 'req-1' })
  const overloaded = run([], { end: new GatewayError({ statusCode: 503, message: 'busy', source: 'upstream', errorType: 'upstream_5xx' }) })
  t.equal(overloaded.error.error.type, 'overloaded_error')
})

t.test('heartbeats: message_start then ping before the first chunk, a bare ping after', async t => {
  const writer = new MessagesEventWriter({ model: 'claude-x', requestId: 'r', showThinking: true })
  const first = parseFrames(writer.heartbeat())
  t.same(first.map(frame => frame.event), ['message_start', 'ping'])
  t.same(JSON.parse(first[1].data), { type: 'ping' })
  t.same(parseFrames(writer.heartbeat()).map(frame => frame.event), ['ping'])
  const rest = parseFrames(writer.chunk(delta({ content: 'hi' }, 'stop')) + writer.end())
  t.notOk(rest.some(frame => frame.event === 'message_start'), 'message_start is sent once')
  t.same(checkGrammar([...first, ...rest]).problems, [])
})

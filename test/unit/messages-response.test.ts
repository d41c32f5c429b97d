import t from 'tap'
import { anthropicUsage, parseToolInput, stopReason, toAnthropicMessage } from '../../src/adapters/messages/response.ts'
import { anthropicStatus, contextOverflowMessage, errorTypeFor, fromOpenAIEnvelope, toAnthropicError } from '../../src/adapters/messages/errors.ts'
import { GatewayError } from '../../src/errors.ts'

// wire-apis §2.4 (the JSON message), §2.7 / §4.2 (stop reasons, errors), §4.3 (usage): one test per row.

const completion = (message: Record<string, unknown>, finish = 'stop', usage: Record<string, unknown> = { prompt_tokens: 10, completion_tokens: 3 }) =>
  ({ id: 'chatcmpl-1', choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: finish }], usage }) as any
const options = { model: 'claude-opus-5-5', showThinking: true }

t.test('§2.4 the message: id, type, role, the requested model, content order thinking → text → tool_use', async t => {
  const message = toAnthropicMessage(completion({
    content: 'Listing.',
    reasoning_content: 'Need ls.',
    tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'Bash', arguments: '{"command":"ls"}' } }]
  }, 'tool_calls'), options)
  t.match(message.id, /^msg_[0-9a-f]{24}$/)
  t.same({ ...message, id: 'x', content: message.content.map(block => block.type === 'thinking' ? { ...block, signature: 'sig' } : block) }, {
    id: 'x',
    type: 'message',
    role: 'assistant',
    model: 'claude-opus-5-5',
    content: [
      { type: 'thinking', thinking: 'Need ls.', signature: 'sig' },
      { type: 'text', text: 'Listing.' },
      { type: 'tool_use', id: 'call_1', name: 'Bash', input: { command: 'ls' } }
    ],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }
  })
  t.match((message.content[0] as any).signature, /^qg1\.[A-Za-z0-9_-]+$/)
})

t.test('§2.4 empty or whitespace text is left out; thinking omitted on request', async t => {
  const message = toAnthropicMessage(completion({ content: '\n\n', reasoning_content: 'hmm', tool_calls: [{ id: 'c', function: { name: 'Read', arguments: '{}' } }] }), { ...options, showThinking: false })
  t.same(message.content.map(block => block.type), ['tool_use'])
  t.equal(message.stop_reason, 'tool_use', 'a call means tool_use even if the upstream said stop')
})

t.test('§2.4 tool arguments that are not a JSON object → {} and a warning', async t => {
  const warned: string[] = []
  const message = toAnthropicMessage(completion({
    content: null,
    tool_calls: [
      { id: 'c1', function: { name: 'Broken', arguments: '{"a":' } },
      { id: 'c2', function: { name: 'Array', arguments: '[1]' } },
      { id: 'c3', function: { name: 'Empty', arguments: '' } }
    ]
  }, 'tool_calls'), { ...options, onInvalidArguments: name => warned.push(name) })
  t.same(message.content.map(block => (block as any).input), [{}, {}, {}])
  t.same(warned, ['Broken', 'Array'])
  t.same(parseToolInput('{"x":1}'), { x: 1 })
})

t.test('§2.4 tool ids outside Anthropic\'s alphabet are encoded', async t => {
  const message = toAnthropicMessage(completion({ content: '', tool_calls: [{ id: 'functions.Bash:0', function: { name: 'Bash', arguments: '{}' } }] }), options)
  t.match((message.content[0] as any).id, /^[A-Za-z0-9_-]+$/)
})

t.test('§2.7 / §4.2 stop reasons', async t => {
  t.equal(stopReason('stop', false), 'end_turn')
  t.equal(stopReason('stop', true), 'tool_use')
  t.equal(stopReason('tool_calls', true), 'tool_use')
  t.equal(stopReason('length', false), 'max_tokens')
  t.equal(stopReason('length', true), 'max_tokens')
  t.equal(stopReason('content_filter', false), 'refusal')
  t.equal(stopReason(null, false), 'end_turn')
})

t.test('§4.3 usage: input_tokens = P − cached − cache written; all four numbers always present', async t => {
  t.same(anthropicUsage({ prompt_tokens: 2410, completion_tokens: 38, prompt_tokens_details: { cached_tokens: 1800 } }),
    { input_tokens: 610, output_tokens: 38, cache_creation_input_tokens: 0, cache_read_input_tokens: 1800 })
  t.same(anthropicUsage({ prompt_tokens: 100, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 20, cache_creation_input_tokens: 50 } } as any),
    { input_tokens: 30, output_tokens: 1, cache_creation_input_tokens: 50, cache_read_input_tokens: 20 })
  t.same(anthropicUsage(null), { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })
  t.same(anthropicUsage({ prompt_tokens_details: null } as any), { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })
})

t.test('§2.7 status → error type table; 503 and overload → 529', async t => {
  const table: Array<[number, string]> = [
    [400, 'invalid_request_error'], [401, 'authentication_error'], [403, 'permission_error'], [404, 'not_found_error'],
    [413, 'request_too_large'], [429, 'rate_limit_error'], [500, 'api_error'], [502, 'api_error'], [504, 'timeout_error'], [529, 'overloaded_error'],
    [415, 'invalid_request_error']
  ]
  for (const [status, type] of table) t.equal(errorTypeFor(status), type, String(status))
  t.equal(anthropicStatus({ statusCode: 503, errorType: 'upstream_5xx' }), 529)
  t.equal(anthropicStatus({ statusCode: 503, errorType: 'gateway_overloaded' }), 529)
  t.equal(anthropicStatus({ statusCode: 502, errorType: 'upstream_network' }), 502)
})

t.test('§2.7 the envelope: upstream messages pass through unchanged', async t => {
  const error = new GatewayError({ statusCode: 400, message: 'Input data may contain inappropriate content.', errorType: 'upstream_content_filter', source: 'upstream' })
  t.same(toAnthropicError(error, 'req-9'), {
    statusCode: 400,
    body: { type: 'error', error: { type: 'invalid_request_error', message: 'Input data may contain inappropriate content.' }, request_id: 'req-9' }
  })
})

t.test('the gateway\'s own 401 names both ways to send a key', async t => {
  const { invalidClientKey } = await import('../../src/errors.ts')
  t.match(toAnthropicError(invalidClientKey(), 'r'), { statusCode: 401, body: { error: { type: 'authentication_error', message: /"x-api-key: <key>" or "Authorization: Bearer <key>"/ } } })
})

t.test('§2.7 context overflow in Claude Code\'s words', async t => {
  const dashscope = '<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 129024]'
  t.equal(contextOverflowMessage(dashscope, () => 150_000), 'prompt is too long: 150000 tokens > 129024 maximum')
  t.equal(contextOverflowMessage(dashscope, () => 1000), 'prompt is too long: 129025 tokens > 129024 maximum', 'an estimate below the limit never contradicts it')
  t.equal(contextOverflowMessage('This model\'s maximum context length is 32768 tokens. However, your messages resulted in 40000 tokens.', () => 1),
    'prompt is too long: 40000 tokens > 32768 maximum')
  t.equal(contextOverflowMessage('This model\'s maximum context length is 32768 tokens. However, you requested 33000 tokens (1000 in the messages, 32000 in the completion).', () => 1),
    'input length and `max_tokens` exceed context limit: 1000 + 32000 > 32768', 'output budget overflow: Claude Code lowers max_tokens')
  const error = new GatewayError({
    statusCode: 400,
    message: dashscope,
    errorType: 'upstream_context_length',
    source: 'upstream',
    upstream: { status: 400, message: dashscope, type: 'invalid_request_error', code: 'invalid_parameter_error' }
  })
  t.same(toAnthropicError(error, 'r', () => 200_000).body.error, { type: 'invalid_request_error', message: 'prompt is too long: 200000 tokens > 129024 maximum' })
})

t.test('an OpenAI envelope sent directly is rewritten; Anthropic\'s own is left alone', async t => {
  t.same(fromOpenAIEnvelope('{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}', 429, 'r'),
    { type: 'error', error: { type: 'rate_limit_error', message: 'Rate limit reached' }, request_id: 'r' })
  t.same(fromOpenAIEnvelope('{"statusCode":503,"error":"Service Unavailable","message":"Service Unavailable"}', 529, 'r'),
    { type: 'error', error: { type: 'overloaded_error', message: 'Service Unavailable' }, request_id: 'r' })
  t.equal(fromOpenAIEnvelope('{"type":"error","error":{"type":"api_error","message":"x"},"request_id":"r"}', 500, 'r'), null)
  t.equal(fromOpenAIEnvelope('not json', 500, 'r'), null)
})

t.test('a non-streamed request answered from an upstream stream: the gathered answer rebuilds the chat answer', async t => {
  const { GatheredAnswer } = await import('../../src/pipeline/gathered-answer.ts')
  const collector = new GatheredAnswer()
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({ id: 'chatcmpl-7', choices: [{ index: 0, delta, finish_reason: finish }] })
  for (const part of [
    chunk({ role: 'assistant', reasoning_content: 'Think ' }),
    chunk({ reasoning_content: 'more.' }),
    chunk({ content: 'Calling.' }),
    chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'Bash', arguments: '' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"command":"ls"}' } }] }),
    chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'Read', arguments: '{}' } }] }),
    chunk({}, 'tool_calls'),
    { id: 'chatcmpl-7', choices: [], usage: { prompt_tokens: 9, completion_tokens: 4 } }
  ]) t.equal(collector.chunk(part as any), '', 'writes nothing')
  t.equal(collector.heartbeat(), '')
  t.equal(collector.end(), '')
  const message = toAnthropicMessage(collector.completion(), options)
  t.same(message.content.map(block => block.type), ['thinking', 'text', 'tool_use', 'tool_use'])
  t.match(message.content, [{ thinking: 'Think more.' }, { text: 'Calling.' }, { id: 'call_a', input: { command: 'ls' } }, { id: 'call_b', name: 'Read', input: {} }])
  t.equal(message.stop_reason, 'tool_use')
  t.same(message.usage, { input_tokens: 9, output_tokens: 4, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })
  const failure = new GatewayError({ statusCode: 502, message: 'cut' })
  t.equal(collector.fail(failure), '')
  t.equal(collector.error, failure)
})

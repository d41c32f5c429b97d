import t from 'tap'
import { requestError, responseError } from '../../src/adapters/responses/failure.ts'
import { inputItemId, newResponseCore, outputItemId, responseIdOf } from '../../src/adapters/responses/ids.ts'
import { identify, inlineReferences, pageOfItems, referencedIds } from '../../src/adapters/responses/items.ts'
import { createReasoningSealer, reasoningKey } from '../../src/adapters/responses/reasoning-token.ts'
import { baseResponse, finishState, responseFromCompletion, responseSetup } from '../../src/adapters/responses/response.ts'
import { chatTools } from '../../src/adapters/responses/tools.ts'
import { responseUsage } from '../../src/adapters/responses/usage.ts'
import { GatewayError } from '../../src/errors.ts'

// The mapping tables of wire-apis §4 (finish state, usage, ids), the Response object of §1.4, the reasoning tokens
// of §1.9 and the error codes of §1.7, row by row.

const sealer = createReasoningSealer(reasoningKey('s', []))
const setup = (body: Record<string, any> = {}) => {
  const full: Record<string, any> & { model: string } = { model: 'qwen-plus', ...body }
  return responseSetup(full, chatTools(full.tools).names, sealer, 'abc', 1_796_040_586_000)
}

t.test('§4.3 usage: prompt → input, cached and cache-write details, completion → output, reasoning tokens, total', async t => {
  t.same(responseUsage({ prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, prompt_tokens_details: { cached_tokens: 60, cache_creation_input_tokens: 10 } as any, completion_tokens_details: { reasoning_tokens: 5 } }), {
    input_tokens: 100, input_tokens_details: { cached_tokens: 60, cache_write_tokens: 10 }, output_tokens: 20, output_tokens_details: { reasoning_tokens: 5 }, total_tokens: 120
  })
  t.same(responseUsage({ prompt_tokens: 7, completion_tokens: 3 }), {
    input_tokens: 7, input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 10
  }, 'missing fields count as 0; a missing total is the sum')
  t.equal(responseUsage(null), null)
})

t.test('§4.2 finish state: stop and tool_calls complete; length and content_filter are incomplete with their reason', async t => {
  t.same(finishState('stop'), { status: 'completed', incomplete_details: null })
  t.same(finishState('tool_calls'), { status: 'completed', incomplete_details: null })
  t.same(finishState('length'), { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } })
  t.same(finishState('content_filter'), { status: 'incomplete', incomplete_details: { reason: 'content_filter' } })
})

t.test('§4.4 ids: resp_<id>, msg_/rs_/fc_<id>_<n>; input ids never collide with output ids', async t => {
  const core = newResponseCore()
  t.match(core, /^[0-9a-f]{24}$/)
  t.not(core, newResponseCore())
  t.equal(responseIdOf('abc'), 'resp_abc')
  t.equal(outputItemId('message', 'abc', 1), 'msg_abc_1')
  t.equal(outputItemId('reasoning', 'abc', 0), 'rs_abc_0')
  t.equal(outputItemId('function_call', 'abc', 2), 'fc_abc_2')
  t.equal(outputItemId('custom_tool_call', 'abc', 3), 'ctc_abc_3')
  t.equal(inputItemId('message', 'abc', 0), 'msg_abc_in0')
  t.equal(inputItemId('function_call_output', 'abc', 4), 'fco_abc_in4')
})

t.test('§1.4 the JSON Response: every field, output_text parts with annotations and logprobs, no output_text field', async t => {
  const body = { tools: [{ type: 'function', name: 'ls' }], instructions: 'Be brief.', metadata: { k: 'v' }, temperature: 0.5, max_output_tokens: 99, store: false, prompt_cache_key: 'pk', reasoning: { effort: 'low', summary: 'auto' } }
  const response = responseFromCompletion(setup(body), {
    id: 'chatcmpl-1',
    choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: 'Looking.', reasoning_content: 'why', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'ls', arguments: '{}' } }, { type: 'function', function: { name: 'ls', arguments: '{"a":1}' } }] } }],
    usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 }
  })
  t.match(response, {
    id: 'resp_abc',
    object: 'response',
    created_at: 1_796_040_586,
    status: 'completed',
    model: 'qwen-plus',
    error: null,
    incomplete_details: null,
    instructions: 'Be brief.',
    metadata: { k: 'v' },
    parallel_tool_calls: true,
    temperature: 0.5,
    top_p: null,
    tool_choice: 'auto',
    tools: body.tools,
    previous_response_id: null,
    store: false,
    text: { format: { type: 'text' } },
    reasoning: { effort: 'low', summary: 'auto' },
    max_output_tokens: 99,
    prompt_cache_key: 'pk',
    usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 }
  })
  t.notOk('output_text' in response)
  t.same(response.output[0], { type: 'reasoning', id: 'rs_abc_0', summary: [{ type: 'summary_text', text: 'why' }] })
  t.same(response.output[1], { type: 'message', id: 'msg_abc_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Looking.', annotations: [], logprobs: [] }] })
  t.same(response.output[2], { type: 'function_call', id: 'fc_abc_2', call_id: 'call_1', name: 'ls', arguments: '{}', status: 'completed' })
  t.match(response.output[3], { type: 'function_call', id: 'fc_abc_3', call_id: /^call_[0-9a-f]{24}$/, arguments: '{"a":1}' }, 'a call without an upstream id gets a minted call_id')
  t.equal(new Set(response.output.map(item => item.id)).size, 4, 'ids unique')
})

t.test('§1.4 a cut-short JSON answer is incomplete, its message too', async t => {
  const response = responseFromCompletion(setup(), { choices: [{ index: 0, finish_reason: 'length', message: { content: 'trunc' } }], usage: { prompt_tokens: 1, completion_tokens: 1 } })
  t.match(response, { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, output: [{ type: 'message', status: 'incomplete' }] })
})

t.test('§1.4 the in-progress Response has every field and null usage', async t => {
  const response = baseResponse(setup())
  for (const field of ['id', 'object', 'created_at', 'status', 'model', 'output', 'error', 'incomplete_details', 'instructions', 'metadata', 'parallel_tool_calls', 'temperature', 'top_p', 'tool_choice', 'tools', 'usage', 'store', 'text', 'reasoning', 'max_output_tokens', 'previous_response_id']) {
    t.ok(field in response, field)
  }
  t.equal(response.status, 'in_progress')
  t.equal(response.usage, null)
})

t.test('§1.9 reasoning tokens: sealed, versioned, opened only when ours and intact', async t => {
  const token = sealer.seal('secret thoughts ✓')
  t.match(token, /^qg1\.[A-Za-z0-9_-]+$/)
  t.not(token, sealer.seal('secret thoughts ✓'), 'a fresh IV each time')
  t.equal(sealer.open(token), 'secret thoughts ✓')
  const other = createReasoningSealer(reasoningKey('another secret', []))
  t.equal(other.open(token), null, 'another key cannot open it')
  t.equal(sealer.open(token.slice(0, -3) + (token.endsWith('A') ? 'BBB' : 'AAA')), null, 'tampered')
  t.equal(sealer.open('gAAAAABm-openai-encrypted'), null, 'foreign')
  t.equal(sealer.open('qg1.'), null)
  t.equal(sealer.open(42), null)
  const fromKeys = createReasoningSealer(reasoningKey('', ['sk-b', 'sk-a']))
  t.equal(createReasoningSealer(reasoningKey('', ['sk-a', 'sk-b'])).open(fromKeys.seal('x')), 'x', 'replicas with the same upstream keys agree, in any order')
  t.equal(createReasoningSealer(reasoningKey('', ['sk-c'])).open(fromKeys.seal('x')), null)
})

t.test('§1.9 encrypted_content only when include asks for it', async t => {
  const completion = { choices: [{ index: 0, finish_reason: 'stop', message: { content: 'a', reasoning_content: 'r' } }] }
  t.notOk('encrypted_content' in responseFromCompletion(setup(), completion).output[0])
  const item = responseFromCompletion(setup({ include: ['reasoning.encrypted_content'] }), completion).output[0]
  t.equal(sealer.open(item.encrypted_content), 'r')
  t.same(item.content, [{ type: 'reasoning_text', text: 'r' }], 'without a summary asked, the text is content')
})

t.test('§1.7 error codes Codex understands, and a context overflow before the stream is a 400', async t => {
  t.same(responseError(new GatewayError({ statusCode: 400, message: 'm', code: 'context_length_exceeded' })), { code: 'context_length_exceeded', message: 'm' })
  t.same(responseError(new GatewayError({ statusCode: 429, message: 'slow down', errorType: 'upstream_rate_limit' })), { code: 'rate_limit_exceeded', message: 'slow down Please try again in 1s.' })
  t.same(responseError(new GatewayError({ statusCode: 429, message: 'Please try again in 20s.' })), { code: 'rate_limit_exceeded', message: 'Please try again in 20s.' })
  t.equal(responseError(new GatewayError({ statusCode: 503, message: 'x' })).code, 'server_error')
  t.equal(responseError(new GatewayError({ statusCode: 408, message: 'x' })).code, 'server_error')
  t.equal(responseError(new GatewayError({ statusCode: 401, message: 'x' })).code, 'invalid_prompt')
  const overflow = requestError(new GatewayError({ statusCode: 400, message: 'Range of input length should be [1, 98304]', code: 'invalid_parameter_error', errorType: 'upstream_context_length', source: 'upstream' })) as GatewayError
  t.match(overflow, { statusCode: 400, code: 'context_length_exceeded', type: 'invalid_request_error', message: 'Range of input length should be [1, 98304]' })
  t.equal(overflow.headers['x-should-retry'], 'false')
  const other = new GatewayError({ statusCode: 429, message: 'x' })
  t.equal(requestError(other), other, 'other errors pass unchanged')
})

t.test('§1.8 input items: ids minted where missing, references listed and inlined, unknown references a 400', async t => {
  const items = identify([{ role: 'user', content: 'hi' }, { type: 'message', id: 'msg_mine', role: 'user', content: 'x' }, { type: 'function_call_output', call_id: 'c', output: 'o' }], 'abc')
  t.same(items.map(item => [item.type, item.id]), [['message', 'msg_abc_in0'], ['message', 'msg_mine'], ['function_call_output', 'fco_abc_in2']])
  const input = [{ type: 'item_reference', id: 'msg_1' }, { role: 'user', content: 'q' }, { type: 'item_reference', id: 'rs_1' }, { type: 'item_reference', id: 'msg_1' }]
  t.same(referencedIds(input), ['msg_1', 'rs_1'])
  const found = new Map([['msg_1', { type: 'message', id: 'msg_1', role: 'assistant', content: [] }], ['rs_1', { type: 'reasoning', id: 'rs_1', summary: [] }]])
  t.same(inlineReferences(input, found).map(item => item.type ?? item.role), ['message', 'user', 'reasoning', 'message'])
  t.throws(() => inlineReferences([{ type: 'item_reference', id: 'msg_gone' }], new Map()), { message: /\S/, statusCode: 400, code: 'item_not_found', param: 'input[0].id' })
})

t.test('§1.1 input_items pages: desc by default, limit, after, has_more, first_id and last_id', async t => {
  const items = Array.from({ length: 5 }, (_, i) => ({ type: 'message', id: `i${i}` }))
  t.same(pageOfItems(items, {}), { object: 'list', data: [...items].reverse(), first_id: 'i4', last_id: 'i0', has_more: false })
  t.same(pageOfItems(items, { order: 'asc', limit: 2 }), { object: 'list', data: items.slice(0, 2), first_id: 'i0', last_id: 'i1', has_more: true })
  t.same(pageOfItems(items, { order: 'asc', limit: 2, after: 'i1' }).data.map(item => item.id), ['i2', 'i3'])
  t.same(pageOfItems(items, { after: 'i1' }).data.map(item => item.id), ['i0'])
  t.same(pageOfItems([], {}), { object: 'list', data: [], first_id: null, last_id: null, has_more: false })
  t.throws(() => pageOfItems(items, { after: 'nope' }), { message: /\S/, statusCode: 400, param: 'after' })
})

t.test('§1.4 whitespace text before tool calls is no message item; whitespace alone is', async t => {
  const calls = [{ id: 'call_1', type: 'function', function: { name: 'ls', arguments: '{}' } }]
  t.same(responseFromCompletion(setup(), { choices: [{ index: 0, finish_reason: 'tool_calls', message: { content: '\n\n', tool_calls: calls } }] }).output.map(item => item.type), ['function_call'])
  t.same(responseFromCompletion(setup(), { choices: [{ index: 0, finish_reason: 'stop', message: { content: ' ' } }] }).output.map(item => item.type), ['message'])
})

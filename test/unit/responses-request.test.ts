import t from 'tap'
import { inputMessages } from '../../src/adapters/responses/input.ts'
import { createReasoningSealer, reasoningKey } from '../../src/adapters/responses/reasoning-token.ts'
import { chatRequest, refuseUnsupported, requestItems, responseFormat } from '../../src/adapters/responses/request.ts'
import { withoutPriorReasoning } from '../../src/adapters/chat-request.ts'
import { chatToolChoice, chatTools, flatten } from '../../src/adapters/responses/tools.ts'
import { GatewayError } from '../../src/errors.ts'

// One test per row of wire-apis §1.2 (request fields), §1.3 (input items) and §1.10 (tools).

const sealer = createReasoningSealer(reasoningKey('test-secret', []))
const translate = (body: Record<string, any>) => chatRequest({ model: 'qwen-plus', ...body }, requestItems(body.input), sealer).chat
const messages = (items: any[], tools?: any[]) => inputMessages(items, { names: chatTools(tools).names, sealer })
const user = (text: string) => ({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] })

t.test('§1.2 input: a string is one user message; instructions lead as a system message', async t => {
  t.same(translate({ input: 'hi' }).messages, [{ role: 'user', content: 'hi' }])
  t.same(translate({ input: 'hi', instructions: 'Be brief.' }).messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }])
})

t.test('§1.2 max_output_tokens → max_tokens; absent, none is set here (the pipeline fills the model\'s maximum)', async t => {
  t.equal(translate({ input: 'x', max_output_tokens: 300 }).max_tokens, 300)
  t.notOk('max_tokens' in translate({ input: 'x' }))
})

t.test('§1.2 temperature, top_p, user and provider extras pass; Responses-only fields do not', async t => {
  const chat = translate({
    input: 'x',
    temperature: 0.3,
    top_p: 0.9,
    user: 'u1',
    enable_search: true,
    top_k: 5,
    metadata: { a: '1' },
    store: true,
    include: ['reasoning.encrypted_content'],
    prompt_cache_key: 'k',
    safety_identifier: 's',
    truncation: 'auto',
    service_tier: 'auto',
    previous_response_id: 'resp_x'
  })
  t.match(chat, { temperature: 0.3, top_p: 0.9, user: 'u1', enable_search: true, top_k: 5 })
  for (const field of ['metadata', 'store', 'include', 'prompt_cache_key', 'safety_identifier', 'truncation', 'service_tier', 'previous_response_id', 'input']) {
    t.notOk(field in chat, `${field} is not sent upstream`)
  }
})

t.test('§1.2 reasoning.effort → reasoning_effort (none and minimal turn thinking off)', async t => {
  const effort = (value: string) => translate({ input: 'x', reasoning: { effort: value } }).reasoning_effort
  t.equal(effort('none'), 'none')
  t.equal(effort('minimal'), 'none')
  t.equal(effort('low'), 'low')
  t.equal(effort('medium'), 'medium')
  t.equal(effort('high'), 'high')
  t.equal(effort('xhigh'), 'high')
  t.notOk('reasoning_effort' in translate({ input: 'x', reasoning: { summary: 'auto' } }))
})

t.test('§1.2 text.format json_schema and json_object → response_format; text needs none', async t => {
  t.same(responseFormat({ format: { type: 'json_schema', name: 'person', schema: { type: 'object' }, strict: true } }),
    { type: 'json_schema', json_schema: { name: 'person', schema: { type: 'object' }, strict: true } })
  t.same(responseFormat({ format: { type: 'json_object' } }), { type: 'json_object' })
  t.equal(responseFormat({ format: { type: 'text' } }), undefined)
  t.throws(() => responseFormat({ format: { type: 'json_schema', schema: {} } }), { message: /\S/, statusCode: 400, param: 'text.format.name' })
  t.same(translate({ input: 'x', text: { format: { type: 'json_object' } } }).response_format, { type: 'json_object' })
})

t.test('§1.2 conversation and background:true are refused with 400', async t => {
  t.match(refuseUnsupported({ model: 'm', conversation: 'conv_1' }), { statusCode: 400, param: 'conversation' })
  t.match(refuseUnsupported({ model: 'm', background: true }), { statusCode: 400, param: 'background' })
  t.equal(refuseUnsupported({ model: 'm', background: false }), null)
})

t.test('§1.2 stream → stream:true (usage is asked by the payload builder)', async t => {
  t.equal(translate({ input: 'x', stream: true }).stream, true)
  t.notOk('stream' in translate({ input: 'x', stream: false }))
})

t.test('§1.3 system and developer messages become system messages in place', async t => {
  t.same(messages([
    { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'dev 1' }] },
    { role: 'system', content: 'sys' },
    user('hi'),
    { role: 'developer', content: 'later dev' }
  ]), [{ role: 'system', content: 'dev 1' }, { role: 'system', content: 'sys' }, { role: 'user', content: 'hi' }, { role: 'system', content: 'later dev' }])
})

t.test('§1.3 user input_text and input_image parts; input_file is refused', async t => {
  t.same(messages([{ role: 'user', content: [{ type: 'input_text', text: 'see' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'high' }] }]),
    [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'high' } }] }])
  t.same(messages([{ role: 'user', content: [{ type: 'input_text', text: 'a' }, { type: 'input_text', text: 'b' }] }]), [{ role: 'user', content: 'ab' }])
  t.throws(() => messages([{ role: 'user', content: [{ type: 'input_file', file_id: 'file_1' }] }]), { message: /\S/, statusCode: 400, param: 'input[0].content[0]' })
  t.throws(() => messages([{ role: 'user', content: [{ type: 'input_image', file_id: 'file_1' }] }]), { message: /\S/, statusCode: 400 })
})

t.test('§1.3 assistant messages and output messages (output_text, refusal) become assistant text; ids and status ignored', async t => {
  t.same(messages([
    { type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hi', annotations: [] }] },
    { role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] },
    { role: 'assistant', content: 'plain' }
  ]), [{ role: 'assistant', content: 'Hi' }, { role: 'assistant', content: 'No.' }, { role: 'assistant', content: 'plain' }])
})

t.test('§1.3 function_call items merge (with the assistant text before them) into one assistant message; call_id kept', async t => {
  t.same(messages([
    user('go'),
    { role: 'assistant', content: [{ type: 'output_text', text: 'Calling.' }] },
    { type: 'function_call', call_id: 'call_A', name: 'ls', arguments: '{}' },
    { type: 'function_call', call_id: 'call_B', name: 'cat', arguments: '{"f":1}' },
    { type: 'function_call_output', call_id: 'call_A', output: 'a.txt' },
    { type: 'function_call_output', call_id: 'call_B', output: 'text' }
  ]), [
    { role: 'user', content: 'go' },
    {
      role: 'assistant',
      content: 'Calling.',
      tool_calls: [
        { id: 'call_A', type: 'function', function: { name: 'ls', arguments: '{}' } },
        { id: 'call_B', type: 'function', function: { name: 'cat', arguments: '{"f":1}' } }
      ]
    },
    { role: 'tool', tool_call_id: 'call_A', content: 'a.txt' },
    { role: 'tool', tool_call_id: 'call_B', content: 'text' }
  ])
})

t.test('§1.3 function_call_output with array output: text joined, images in a following user message', async t => {
  t.same(messages([
    { type: 'function_call', call_id: 'c1', name: 'shot', arguments: '{}' },
    { type: 'function_call_output', call_id: 'c1', output: [{ type: 'input_text', text: 'part 1, ' }, { type: 'input_image', image_url: 'https://x/y.png' }, { type: 'input_text', text: 'part 2' }] }
  ]).slice(1), [
    { role: 'tool', tool_call_id: 'c1', content: 'part 1, part 2' },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }
  ])
})

t.test('§1.3 custom_tool_call / _output: a function call with {"input"} arguments, a tool message', async t => {
  const tools = [{ type: 'custom', name: 'apply_patch', description: 'Patch files' }]
  t.same(messages([
    { type: 'custom_tool_call', call_id: 'c2', name: 'apply_patch', input: '*** Begin Patch' },
    { type: 'custom_tool_call_output', call_id: 'c2', output: 'Done' }
  ], tools), [
    { role: 'assistant', content: null, tool_calls: [{ id: 'c2', type: 'function', function: { name: 'apply_patch', arguments: '{"input":"*** Begin Patch"}' } }] },
    { role: 'tool', tool_call_id: 'c2', content: 'Done' }
  ])
})

t.test('§1.3 namespaced function_call items use the flattened name', async t => {
  const tools = [{ type: 'namespace', name: 'multi_agent_v1', tools: [{ type: 'function', name: 'spawn_agent', parameters: { type: 'object' } }] }]
  t.same(messages([{ type: 'function_call', call_id: 'c3', name: 'spawn_agent', namespace: 'multi_agent_v1', arguments: '{}' }], tools)[0].tool_calls[0].function.name, 'multi_agent_v1__spawn_agent')
})

t.test('§1.3 reasoning items become reasoning_content of the next assistant message: our token, else summary, else content', async t => {
  const sealed = sealer.seal('full private reasoning')
  t.same(messages([
    user('q'),
    { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'short' }], encrypted_content: sealed },
    { type: 'function_call', call_id: 'c1', name: 'ls', arguments: '{}' }
  ])[1], { role: 'assistant', content: null, reasoning_content: 'full private reasoning', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'ls', arguments: '{}' } }] })
  t.same(messages([
    { type: 'reasoning', summary: [{ type: 'summary_text', text: 'from summary' }], encrypted_content: 'gAAAAforeign-openai-token' },
    { role: 'assistant', content: 'A' }
  ]), [{ role: 'assistant', content: 'A', reasoning_content: 'from summary' }], 'a foreign token is ignored')
  t.same(messages([
    { type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: 'from content' }] },
    { role: 'assistant', content: 'B' }
  ]), [{ role: 'assistant', content: 'B', reasoning_content: 'from content' }])
  t.same(messages([{ type: 'reasoning', summary: [{ type: 'summary_text', text: 'dangling' }] }, user('next')]), [{ role: 'user', content: 'next' }], 'reasoning with no assistant after it is dropped')
})

t.test('§1.3 hosted-tool items are dropped; an unresolved item_reference or unknown type is a 400', async t => {
  t.same(messages([user('a'), { type: 'web_search_call', id: 'ws_1', status: 'completed' }, { type: 'mcp_list_tools' }, { type: 'local_shell_call' }]), [{ role: 'user', content: 'a' }])
  t.throws(() => messages([{ type: 'item_reference', id: 'msg_x' }]), GatewayError)
  t.throws(() => messages([{ type: 'bogus' }]), { message: /\S/, statusCode: 400 })
  t.throws(() => messages([{ role: 'robot', content: 'x' }]), { message: /\S/, statusCode: 400 })
})

t.test('§1.10 function tools → chat function tools; custom tools → one string input; hosted tools dropped', async t => {
  const { tools } = chatTools([
    { type: 'function', name: 'ls', description: 'List', parameters: { type: 'object', properties: { p: { type: 'string' } } }, strict: true },
    { type: 'function', name: 'noargs' },
    { type: 'custom', name: 'apply_patch', description: 'Patch', format: { type: 'grammar', syntax: 'lark', definition: 'start: "x"' } },
    { type: 'web_search' },
    { type: 'file_search', vector_store_ids: [] },
    { type: 'mcp', server_label: 'x' }
  ])
  t.same(tools[0], { type: 'function', function: { name: 'ls', description: 'List', parameters: { type: 'object', properties: { p: { type: 'string' } } }, strict: true } })
  t.same(tools[1], { type: 'function', function: { name: 'noargs', parameters: { type: 'object', properties: {} } } })
  t.equal(tools[2].function.name, 'apply_patch')
  t.match(tools[2].function.parameters, { properties: { input: { type: 'string' } }, required: ['input'] })
  t.match(tools[2].function.description, /Patch\n\nThe input must follow this lark grammar:\nstart: "x"/)
  t.equal(tools.length, 3)
})

t.test('§1.10 namespace tools are flattened to unique names within 64 characters, and restored', async t => {
  const long = 'n'.repeat(40)
  const { tools, names } = chatTools([
    { type: 'namespace', name: 'multi_agent_v1', tools: [{ type: 'function', name: 'spawn_agent' }, { type: 'function', name: 'wait' }] },
    { type: 'namespace', name: long, tools: [{ type: 'function', name: 'f'.repeat(40) }] },
    { type: 'function', name: 'wait' }
  ])
  t.same(tools.map(tool => tool.function.name).slice(0, 2), ['multi_agent_v1__spawn_agent', 'multi_agent_v1__wait'])
  t.ok(tools[2].function.name.length <= 64, 'shortened')
  t.equal(tools[2].function.name, flatten(long, 'f'.repeat(40)))
  t.same(names.origin('multi_agent_v1__spawn_agent'), { name: 'spawn_agent', namespace: 'multi_agent_v1', custom: false })
  t.same(names.origin('wait'), { name: 'wait', namespace: undefined, custom: false }, 'a top-level function gets no namespace')
  t.same(names.origin(tools[2].function.name), { name: 'f'.repeat(40), namespace: long, custom: false })
  t.same(names.origin('unknown_tool'), { name: 'unknown_tool', custom: false })
  t.same(names.origin('spawn_agent'), { name: 'spawn_agent', namespace: 'multi_agent_v1', custom: false }, 'a call without its namespace prefix still finds its one namespaced tool')
})

t.test('§1.10 tool_choice: strings as they are, named tools as chat function choices, flattened', async t => {
  const { names } = chatTools([{ type: 'namespace', name: 'ns', tools: [{ type: 'function', name: 'f' }] }, { type: 'custom', name: 'c' }])
  t.equal(chatToolChoice('auto', names), 'auto')
  t.equal(chatToolChoice('required', names), 'required')
  t.equal(chatToolChoice('none', names), 'none')
  t.same(chatToolChoice({ type: 'function', name: 'f', namespace: 'ns' }, names), { type: 'function', function: { name: 'ns__f' } })
  t.same(chatToolChoice({ type: 'custom', name: 'c' }, names), { type: 'function', function: { name: 'c' } })
  t.equal(chatToolChoice({ type: 'allowed_tools', mode: 'required', tools: [] }, names), 'required')
  t.equal(chatToolChoice({ type: 'web_search' }, names), 'auto')
  t.equal(chatToolChoice(undefined, names), undefined)
})

t.test('§1.10 parallel_tool_calls is always explicit when tools are sent (DashScope defaults to false)', async t => {
  const tools = [{ type: 'function', name: 'ls' }]
  t.equal(translate({ input: 'x', tools }).parallel_tool_calls, true)
  t.equal(translate({ input: 'x', tools, parallel_tool_calls: false }).parallel_tool_calls, false)
  t.notOk('parallel_tool_calls' in translate({ input: 'x', tools: [{ type: 'web_search' }] }), 'no tools left: nothing to say')
  t.notOk('tools' in translate({ input: 'x', tools: [{ type: 'web_search' }] }))
})

t.test('an empty conversation is a 400', async t => {
  t.throws(() => translate({ input: [] }), { message: /\S/, statusCode: 400, param: 'input' })
})

t.test('§1.3 prior reasoning can be dropped for models that do not think', async t => {
  const chat = translate({ input: [{ type: 'reasoning', summary: [{ type: 'summary_text', text: 'r' }] }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'b' }] })
  t.same((chat.messages as any[])[0], { role: 'assistant', content: 'a', reasoning_content: 'r' })
  t.same(withoutPriorReasoning(chat.messages), [{ role: 'assistant', content: 'a' }, { role: 'user', content: 'b' }])
  const plain = translate({ input: 'x' }).messages
  t.equal(withoutPriorReasoning(plain), plain, 'nothing to drop: the same messages')
})

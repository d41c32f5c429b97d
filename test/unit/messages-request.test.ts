import t from 'tap'
import { toClientToolId, toUpstreamToolId } from '../../src/adapters/messages/ids.ts'
import { chatMessages, chatToolChoice, chatTools, claudeSession, responseFormat, showsThinking, thinkingFields, toChatRequest, type MessagesRequest } from '../../src/adapters/messages/request.ts'
import { estimateInputTokens } from '../../src/adapters/messages/count-tokens.ts'

// One test per row of wire-apis §2.2 (request fields) and §2.3 (content blocks), and the §4.4 id rule.

const base = (extra: Partial<MessagesRequest> = {}): MessagesRequest => ({ model: 'claude-opus-5-5', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }], ...extra })

t.test('§2.2 model and max_tokens go as asked (aliasing and clamping happen per target)', async t => {
  const chat = toChatRequest(base())
  t.equal(chat.model, 'claude-opus-5-5')
  t.equal(chat.max_tokens, 1000)
  t.notOk('max_tokens' in toChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }] }), 'count_tokens has none')
})

t.test('§2.2 system string → first system message', async t => {
  t.same(chatMessages({ system: 'Be brief.', messages: [{ role: 'user', content: 'hi' }] }), [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'hi' }
  ])
})

t.test('§2.2 system blocks → joined text; a cache_control marker keeps the parts', async t => {
  t.same(chatMessages({ system: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B' }], messages: [] }), [{ role: 'system', content: 'A\n\nB' }])
  t.same(chatMessages({ system: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B', cache_control: { type: 'ephemeral' } }], messages: [] }), [{
    role: 'system',
    content: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B', cache_control: { type: 'ephemeral' } }]
  }])
  t.same(chatMessages({ system: '', messages: [] }), [], 'an empty system prompt is left out')
})

t.test('§2.2 / §2.3 role system inside messages stays in place: first as system, later as a <system-reminder> user turn', async t => {
  const messages = chatMessages({
    system: 'top',
    messages: [
      { role: 'user', content: 'one' },
      { role: 'system', content: 'harness context' },
      { role: 'assistant', content: 'two' },
      { role: 'system', content: [{ type: 'text', text: 'more context', cache_control: { type: 'ephemeral' } }] },
      { role: 'user', content: 'three' },
      { role: 'system', content: '<system-reminder>already wrapped</system-reminder>' }
    ]
  })
  t.same(messages, [
    { role: 'system', content: 'top' },
    { role: 'user', content: 'one' },
    { role: 'user', content: '<system-reminder>\nharness context\n</system-reminder>' },
    { role: 'assistant', content: 'two' },
    { role: 'user', content: [{ type: 'text', text: '<system-reminder>' }, { type: 'text', text: 'more context', cache_control: { type: 'ephemeral' } }, { type: 'text', text: '</system-reminder>' }] },
    { role: 'user', content: 'three' },
    { role: 'user', content: '<system-reminder>already wrapped</system-reminder>' }
  ])
  t.same(chatMessages({ messages: [{ role: 'system', content: 'first of all' }, { role: 'user', content: 'hi' }] }), [
    { role: 'system', content: 'first of all' },
    { role: 'user', content: 'hi' }
  ], 'a system message that comes first stays a system message')
})

t.test('§2.2 stop_sequences → stop; temperature, top_p, top_k pass', async t => {
  const chat = toChatRequest(base({ stop_sequences: ['END', '###'], temperature: 0.2, top_p: 0.9, top_k: 20 }))
  t.same(chat.stop, ['END', '###'])
  t.equal(chat.temperature, 0.2)
  t.equal(chat.top_p, 0.9)
  t.equal(chat.top_k, 20)
  t.notOk('stop' in toChatRequest(base({ stop_sequences: [] })), 'an empty list sends nothing')
})

t.test('§2.2 tools: custom tools → functions, dated types dropped, extras ignored', async t => {
  const tools = chatTools([
    { name: 'Bash', description: 'Run a command', input_schema: { type: 'object', properties: { command: { type: 'string' } } }, cache_control: { type: 'ephemeral' }, defer_loading: true, strict: true },
    { type: 'custom', name: 'Read', input_schema: { type: 'object' } },
    { type: 'web_search_20250305', name: 'web_search', max_uses: 5 },
    { type: 'advisor_20260301', name: 'advisor' },
    { type: 'bash_20250124', name: 'bash' },
    { name: 'NoSchema' }
  ])
  t.same(tools, [
    { type: 'function', function: { name: 'Bash', description: 'Run a command', parameters: { type: 'object', properties: { command: { type: 'string' } } } } },
    { type: 'function', function: { name: 'Read', description: undefined, parameters: { type: 'object' } } },
    { type: 'function', function: { name: 'NoSchema', description: undefined, parameters: { type: 'object', properties: {} } } }
  ])
  const chat = toChatRequest(base({ tools: [{ type: 'web_search_20250305', name: 'web_search' }], tool_choice: { type: 'auto' } }))
  t.notOk('tools' in chat || 'tool_choice' in chat || 'parallel_tool_calls' in chat, 'only server tools: no tool fields at all')
})

t.test('§2.2 tool_choice rows, and parallel_tool_calls always explicit', async t => {
  t.same(chatToolChoice({ type: 'auto' }), { tool_choice: 'auto', parallel_tool_calls: true })
  t.same(chatToolChoice({ type: 'any' }), { tool_choice: 'required', parallel_tool_calls: true })
  t.same(chatToolChoice({ type: 'tool', name: 'Bash' }), { tool_choice: { type: 'function', function: { name: 'Bash' } }, parallel_tool_calls: true })
  t.same(chatToolChoice({ type: 'none' }), { tool_choice: 'none', parallel_tool_calls: true })
  t.same(chatToolChoice({ type: 'auto', disable_parallel_tool_use: true }), { tool_choice: 'auto', parallel_tool_calls: false })
  t.same(chatToolChoice(undefined), { parallel_tool_calls: true }, 'DashScope defaults to false, so true is sent')
})

t.test('§2.2 thinking: enabled, adaptive with effort, disabled, absent', async t => {
  t.same(thinkingFields({ thinking: { type: 'enabled', budget_tokens: 4096 } }), { enable_thinking: true, thinking_budget: 4096 })
  t.same(thinkingFields({ thinking: { type: 'adaptive' } }), { reasoning_effort: 'medium' }, 'adaptive defaults to medium')
  t.same(thinkingFields({ thinking: { type: 'adaptive' }, output_config: { effort: 'low' } }), { reasoning_effort: 'low' })
  t.same(thinkingFields({ thinking: { type: 'adaptive' }, output_config: { effort: 'max' } }), { reasoning_effort: 'high' })
  t.same(thinkingFields({ thinking: { type: 'disabled' } }), { enable_thinking: false })
  t.same(thinkingFields({}), { enable_thinking: false })
  t.equal(showsThinking({ thinking: { type: 'adaptive', display: 'omitted' } }), false)
  t.equal(showsThinking({ thinking: { type: 'adaptive' } }), true)
})

t.test('§2.2 output_config.format json_schema → response_format', async t => {
  const schema = { type: 'object', properties: { answer: { type: 'string' } } }
  t.same(responseFormat({ output_config: { format: { type: 'json_schema', schema } } }), { type: 'json_schema', json_schema: { name: 'output', schema, strict: true } })
  t.same(responseFormat({ output_format: { type: 'json_schema', schema } }), { type: 'json_schema', json_schema: { name: 'output', schema, strict: true } })
  t.equal(responseFormat({}), undefined)
})

t.test('§2.2 metadata, context_management, service_tier, top-level cache_control are not sent upstream', async t => {
  const chat = toChatRequest(base({ metadata: { user_id: 'u' }, context_management: { edits: [] }, service_tier: 'auto', cache_control: { type: 'ephemeral' }, container: 'c', speed: 'fast' }))
  t.same(Object.keys(chat).sort(), ['enable_thinking', 'max_tokens', 'messages', 'model'])
})

t.test('§0 affinity: x-claude-code-session-id, else metadata.user_id\'s session_id', async t => {
  t.equal(claudeSession('abc-123', { user_id: '{"session_id":"zzz"}' }), 'abc-123')
  t.equal(claudeSession(undefined, { user_id: JSON.stringify({ device_id: 'd', account_uuid: '', session_id: '5d6f0a4e-1111-2222-3333-444455556666' }) }), '5d6f0a4e-1111-2222-3333-444455556666')
  t.equal(claudeSession(undefined, { user_id: 'user_ab12_account__session_5d6f0a4e-1111-2222-3333-444455556666' }), '5d6f0a4e-1111-2222-3333-444455556666')
  t.equal(claudeSession(undefined, { user_id: 'plain' }), undefined)
  t.equal(claudeSession(undefined, undefined), undefined)
})

t.test('§2.3 text blocks → text, empty ones skipped', async t => {
  t.same(chatMessages({ messages: [{ role: 'user', content: [{ type: 'text', text: '' }, { type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }] }), [{ role: 'user', content: 'a\n\nb' }])
  t.same(chatMessages({ messages: [{ role: 'user', content: [{ type: 'text', text: 'a', cache_control: { type: 'ephemeral' } }] }] }), [{ role: 'user', content: [{ type: 'text', text: 'a', cache_control: { type: 'ephemeral' } }] }], 'cache markers kept')
})

t.test('§2.3 image base64 / url → image_url', async t => {
  const [message] = chatMessages({
    messages: [{
      role: 'user',
      content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        { type: 'text', text: 'what is this?' }
      ]
    }]
  })
  t.same(message.content, [
    { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
    { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
    { type: 'text', text: 'what is this?' }
  ])
  t.throws(() => chatMessages({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }), { statusCode: 400, message: /not supported/ })
})

t.test('§2.3 document and search_result → text; a PDF → 400', async t => {
  const [message] = chatMessages({
    messages: [{
      role: 'user',
      content: [
        { type: 'document', title: 'Notes', source: { type: 'text', media_type: 'text/plain', data: 'plain text' } },
        { type: 'search_result', source: 'https://x', title: 'Hit', content: [{ type: 'text', text: 'found it' }] }
      ]
    }]
  })
  t.same(message.content, 'Notes\n\nplain text\n\nHit\n\nfound it')
  t.throws(() => chatMessages({ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBER' } }] }] }), { statusCode: 400, message: /not supported/ })
})

t.test('§2.3 assistant tool_use → tool_calls with arguments as JSON text', async t => {
  const [message] = chatMessages({
    messages: [{
      role: 'assistant',
      content: [
        { type: 'text', text: 'Listing.' },
        { type: 'tool_use', id: 'call_9d2b', name: 'Bash', input: { command: 'ls' } },
        { type: 'tool_use', id: 'toolu_01', name: 'Read', input: {} }
      ]
    }]
  })
  t.same(message, {
    role: 'assistant',
    content: 'Listing.',
    tool_calls: [
      { id: 'call_9d2b', type: 'function', function: { name: 'Bash', arguments: '{"command":"ls"}' } },
      { id: 'toolu_01', type: 'function', function: { name: 'Read', arguments: '{}' } }
    ]
  })
})

t.test('§2.3 user tool_result → one tool message each, before the user\'s own text; images after', async t => {
  const messages = chatMessages({
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'carry on' },
        { type: 'tool_result', tool_use_id: 'call_1', content: 'file-a\nfile-b' },
        { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: 'line 1' }, { type: 'text', text: 'line 2' }, { type: 'image', source: { type: 'url', url: 'https://x/shot.png' } }] },
        { type: 'tool_result', tool_use_id: 'call_3', content: 'command not found', is_error: true },
        { type: 'tool_result', tool_use_id: 'call_4', content: '<tool_use_error>denied</tool_use_error>', is_error: true },
        { type: 'tool_result', tool_use_id: 'call_5' }
      ]
    }]
  })
  t.same(messages, [
    { role: 'tool', tool_call_id: 'call_1', content: 'file-a\nfile-b' },
    { role: 'tool', tool_call_id: 'call_2', content: 'line 1\nline 2' },
    { role: 'tool', tool_call_id: 'call_3', content: 'Error: command not found' },
    { role: 'tool', tool_call_id: 'call_4', content: '<tool_use_error>denied</tool_use_error>' },
    { role: 'tool', tool_call_id: 'call_5', content: '' },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/shot.png' } }, { type: 'text', text: 'carry on' }] }
  ])
  t.same(chatMessages({ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c', content: 'ok', cache_control: { type: 'ephemeral' } }] }] }),
    [{ role: 'tool', tool_call_id: 'c', content: [{ type: 'text', text: 'ok', cache_control: { type: 'ephemeral' } }] }], 'a cache marker on a result is kept')
})

t.test('§2.3 thinking → reasoning_content of that assistant message; redacted_thinking dropped', async t => {
  const [message] = chatMessages({
    messages: [{
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'Need ls.', signature: '' },
        { type: 'redacted_thinking', data: 'opaque' },
        { type: 'tool_use', id: 'c1', name: 'Bash', input: { command: 'ls' } }
      ]
    }]
  })
  t.equal(message.reasoning_content, 'Need ls.')
  t.equal(message.content, '')
  t.same(chatMessages({ messages: [{ role: 'assistant', content: [{ type: 'redacted_thinking', data: 'x' }] }] }), [], 'nothing left: no empty assistant message')
})

t.test('§2.3 unknown and server-side blocks are left out', async t => {
  t.same(chatMessages({
    messages: [{ role: 'assistant', content: [{ type: 'server_tool_use', id: 's', name: 'web_search', input: {} }, { type: 'web_search_tool_result', tool_use_id: 's', content: [] }, { type: 'text', text: 'done' }] }]
  }), [{ role: 'assistant', content: 'done' }])
})

t.test('§4.4 tool ids: valid ids unchanged both ways, others encoded reversibly', async t => {
  for (const id of ['call_30fb8bdcce274fbfbb8bd4', 'chatcmpl-tool-9a8b', 'toolu_01ABC']) {
    t.equal(toClientToolId(id), id)
    t.equal(toUpstreamToolId(id), id)
  }
  for (const id of ['functions.Bash:0', 'call 1', 'ünï/文件']) {
    const client = toClientToolId(id)
    t.match(client, /^[A-Za-z0-9_-]+$/, `${id} → ${client}`)
    t.equal(toUpstreamToolId(client), id, 'and back')
  }
  t.equal(toUpstreamToolId('qgw64_Y2FsbF8x'), 'qgw64_Y2FsbF8x', 'a look-alike that decodes to a valid id is nobody\'s encoding')
  const [assistant, tool] = chatMessages({
    messages: [
      { role: 'assistant', content: [{ type: 'tool_use', id: toClientToolId('functions.Bash:0'), name: 'Bash', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toClientToolId('functions.Bash:0'), content: 'ok' }] }
    ]
  })
  t.equal(assistant.tool_calls?.[0].id, 'functions.Bash:0')
  t.equal(tool.tool_call_id, 'functions.Bash:0')
})

t.test('§2.8 the estimate counts text, tool calls, tools and images', async t => {
  const small = estimateInputTokens(toChatRequest(base()))
  const large = estimateInputTokens(toChatRequest(base({ messages: [{ role: 'user', content: 'word '.repeat(4000) }] })))
  t.ok(large >= 5000 && large < 5100, `20,000 bytes ≈ 5,000 tokens (${large})`)
  t.ok(small < 10)
  const withTools = estimateInputTokens(toChatRequest(base({ tools: [{ name: 'Bash', input_schema: { type: 'object', properties: { command: { type: 'string', description: 'x'.repeat(400) } } } }] })))
  t.ok(withTools > small + 100, 'tools count')
  const withImage = estimateInputTokens(toChatRequest(base({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'A'.repeat(100_000) } }] }] })))
  t.ok(withImage < 2000, 'an image costs a flat amount, not its base64 bytes')
})

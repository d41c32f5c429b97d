import t from 'tap'
import { translatedPayloads } from '../../src/adapters/chat-request.ts'
import { createModelLimits } from '../../src/model-limits.ts'

const limits = createModelLimits([])
const out = (body: Record<string, unknown>, model: string, options: { fillMaxTokens?: boolean, nativeTools?: boolean } = {}) =>
  JSON.parse(translatedPayloads(body, { limits, fillMaxTokens: options.fillMaxTokens })(model, options.nativeTools ?? true))
const messages = [{ role: 'user', content: 'hi' }]

t.test('each target gets its own model id, and max_tokens within what that model can give', async t => {
  t.match(out({ model: 'claude-opus-5-5', messages, max_tokens: 128_000 }, 'qwen3-coder-plus'), { model: 'qwen3-coder-plus', max_tokens: 65_536 })
  t.match(out({ model: 'x', messages, max_tokens: 1000 }, 'qwen3-coder-plus'), { max_tokens: 1000 }, 'a smaller ask stays')
  t.match(out({ model: 'x', messages, max_tokens: 128_000 }, 'my-local-model'), { max_tokens: 128_000 }, 'unknown ceiling: as asked')
})

t.test('fillMaxTokens asks the whole budget when the client set none (Responses: Codex never sets one)', async t => {
  t.equal(out({ model: 'x', messages }, 'qwen-plus', { fillMaxTokens: true }).max_tokens, 32_768)
  t.notOk('max_tokens' in out({ model: 'x', messages }, 'qwen-plus'))
  t.notOk('max_tokens' in out({ model: 'x', messages }, 'my-local-model', { fillMaxTokens: true }))
})

t.test('thinking: mapped to DashScope for models that think, dropped for those that do not', async t => {
  t.match(out({ model: 'x', messages, reasoning_effort: 'low' }, 'qwen-plus'), { enable_thinking: true, thinking_budget: 1024 })
  t.notOk('reasoning_effort' in out({ model: 'x', messages, reasoning_effort: 'low' }, 'qwen-plus'))
  const coder = out({ model: 'x', messages, enable_thinking: true, thinking_budget: 500, reasoning_effort: 'high' }, 'qwen3-coder-plus')
  t.notOk('enable_thinking' in coder || 'thinking_budget' in coder || 'reasoning_effort' in coder)
})

t.test('earlier turns\' reasoning goes only to models that think', async t => {
  const history = [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b', reasoning_content: 'because' }, { role: 'user', content: 'c' }]
  t.equal(out({ model: 'x', messages: history }, 'qwen3-max').messages[1].reasoning_content, 'because')
  t.same(out({ model: 'x', messages: history }, 'qwen3-coder-plus').messages[1], { role: 'assistant', content: 'b' })
})

t.test('streams ask for usage; upstreams without native tools get the XML protocol', async t => {
  t.same(out({ model: 'x', messages, stream: true }, 'qwen-plus').stream_options, { include_usage: true })
  const tools = [{ type: 'function', function: { name: 'read_file', parameters: { type: 'object' } } }]
  const xml = out({ model: 'x', messages, tools }, 'local', { nativeTools: false })
  t.notOk('tools' in xml)
  t.match(xml.messages[0], { role: 'system', content: /<tools>/ })
  t.ok('tools' in out({ model: 'x', messages, tools }, 'local'))
})

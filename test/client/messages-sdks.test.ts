import t from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import type { MessageParam, Tool, ToolUseBlock } from '@anthropic-ai/sdk/resources/messages'
import { createAnthropic } from '@ai-sdk/anthropic'
import { generateText } from 'ai'
import { startStack, type Stack } from '../helper.ts'
import { aiSdkWeatherRun, weatherTurn } from './helpers/ai-sdk.ts'
import { chatRequests, clientTestEnv, toolResults } from './helpers/tool-turns.ts'

// The clients of the Anthropic Messages API, as users run them, against POST /v1/messages and
// /v1/messages/count_tokens of the gateway in front of the simulator (Chat Completions only: the gateway
// translates). A claude-* name (Claude Code's default one), as these clients send, reaches qwen3-coder-plus
// through the default alias.

const MODEL = 'claude-opus-5-5'
const UPSTREAM_MODEL = 'qwen3-coder-plus'
const KEY = 'messages-client-key'
const replyTo = (text: string) => 'Hello from the Qwen simulator! You said: ' + text

/** A stack whose gateway requires a client key: x-api-key (apiKey) and Bearer (authToken) must both pass. */
const stack = (t: Parameters<typeof startStack>[0]) => startStack(t, { env: clientTestEnv(KEY) })

// The SDK's base URL is the origin: it adds /v1/messages itself.
const anthropicClient = (s: Stack, auth: { apiKey: string } | { authToken: string } = { apiKey: KEY }) =>
  new Anthropic({ baseURL: s.origin, apiKey: null, authToken: null, ...auth, maxRetries: 0, timeout: 10_000 })

const WEATHER: Tool = {
  name: 'get_weather',
  description: 'The current weather in a city.',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }
}

t.test('@anthropic-ai/sdk messages.create(): text, stop reason, usage, alias', async t => {
  const s = await stack(t)
  const message = await anthropicClient(s).messages.create({
    model: MODEL,
    max_tokens: 512,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'What is Qwen?' }]
  })
  t.equal(message.type, 'message')
  t.equal(message.role, 'assistant')
  t.match(message.id, /^msg_/)
  t.equal(message.stop_reason, 'end_turn')
  t.same(message.content.map(block => block.type), ['text'])
  t.match(message.content[0], { type: 'text', text: replyTo('What is Qwen?') })
  t.type(message.usage.input_tokens, 'number')
  t.ok(message.usage.output_tokens > 0, 'output tokens counted')
  const [upstream] = chatRequests(s.sim.requests)
  t.equal(upstream?.body?.model, UPSTREAM_MODEL, 'claude-* reached the coder model')
  t.match(upstream?.body?.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user' }])
})

t.test('@anthropic-ai/sdk messages.stream().finalMessage() with a Bearer token', async t => {
  const s = await stack(t)
  s.sim.setOverride(() => ({ chunkSize: 5 }))
  const stream = anthropicClient(s, { authToken: KEY }).messages.stream({
    model: MODEL,
    max_tokens: 512,
    messages: [{ role: 'user', content: 'stream it please' }]
  })
  const deltas: string[] = []
  const types: string[] = []
  stream.on('text', delta => deltas.push(delta))
  stream.on('streamEvent', event => types.push(event.type))
  const message = await stream.finalMessage()
  t.equal(message.stop_reason, 'end_turn')
  t.match(message.content, [{ type: 'text', text: replyTo('stream it please') }])
  t.equal(message.content.length, 1, 'no empty text block')
  t.ok(deltas.length > 1, `the text came in ${deltas.length} deltas`)
  t.equal(deltas.join(''), replyTo('stream it please'))
  t.equal(types[0], 'message_start')
  t.equal(types.at(-1), 'message_stop')
  t.ok(message.usage.output_tokens > 0, 'usage in message_delta')
})

t.test('@anthropic-ai/sdk messages.countTokens()', async t => {
  const s = await stack(t)
  const counted = await anthropicClient(s).messages.countTokens({
    model: MODEL,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'How many tokens are in this message?' }],
    tools: [WEATHER]
  })
  t.type(counted.input_tokens, 'number')
  t.ok(counted.input_tokens > 0, `${counted.input_tokens} input tokens`)
})

t.test('@anthropic-ai/sdk: tool_use (streamed) → tool_result round trip', async t => {
  const s = await stack(t)
  weatherTurn(s)
  const client = anthropicClient(s)
  const messages: MessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }]
  const first = await client.messages.stream({ model: MODEL, max_tokens: 512, tools: [WEATHER], messages }).finalMessage()
  t.equal(first.stop_reason, 'tool_use')
  const uses = first.content.filter((block): block is ToolUseBlock => block.type === 'tool_use')
  t.equal(uses.length, 1, 'one tool_use block')
  t.notOk(first.content.some(block => block.type === 'text' && block.text === ''), 'no empty text block')
  const [use] = uses
  if (use === undefined) return
  t.equal(use.name, WEATHER.name)
  t.same(use.input, { city: 'Paris' })
  t.match(use.id, /^[A-Za-z0-9_-]+$/)

  const second = await client.messages.create({
    model: MODEL,
    max_tokens: 512,
    tools: [WEATHER],
    messages: [
      ...messages,
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21 °C' }] }
    ]
  })
  t.equal(second.stop_reason, 'end_turn')
  t.match(second.content, [{ type: 'text', text: 'Weather report: sunny, 21 °C' }])
  const upstream = chatRequests(s.sim.requests)
  t.equal(upstream.length, 2)
  t.same(toolResults(upstream[1]), ['sunny, 21 °C'])
  const assistant = upstream[1].body.messages.find((message: any) => message.role === 'assistant')
  const toolMessage = upstream[1].body.messages.find((message: any) => message.role === 'tool')
  t.equal(assistant?.tool_calls?.[0]?.function?.name, WEATHER.name)
  t.equal(toolMessage?.tool_call_id, assistant?.tool_calls?.[0]?.id, 'the tool_result answers the call the model made')
})

t.test('Vercel AI SDK (@ai-sdk/anthropic): generateText and streamText, a tool, stopWhen stepCountIs(3)', async t => {
  const s = await stack(t)
  await aiSdkWeatherRun(t, s, createAnthropic({ baseURL: s.baseURL, apiKey: KEY })(MODEL))
})

t.test('thinking: @anthropic-ai/sdk sees a thinking block before the text, the AI SDK reasoning text', async t => {
  const s = await stack(t)
  const thought = 'The user greets me; a short answer will do.'
  s.sim.setOverride(() => ({ reasoning: thought, chunkSize: 6 }))

  const message = await anthropicClient(s).messages.stream({
    model: MODEL,
    max_tokens: 2048,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'Hi there' }]
  }).finalMessage()
  t.same(message.content.map(block => block.type), ['thinking', 'text'])
  t.match(message.content[0], { type: 'thinking', thinking: thought })
  t.match(message.content[1], { type: 'text', text: replyTo('Hi there') })
  t.equal(message.stop_reason, 'end_turn')

  const anthropic = createAnthropic({ baseURL: s.baseURL, apiKey: KEY })
  const generated = await generateText({
    model: anthropic(MODEL),
    prompt: 'Hi there',
    maxRetries: 0,
    providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } }
  })
  t.equal(generated.text, replyTo('Hi there'))
  t.equal(generated.reasoningText, thought)
})

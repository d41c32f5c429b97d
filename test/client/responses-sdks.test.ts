import t from 'tap'
import OpenAI from 'openai'
import type { ResponseFunctionToolCall, ResponseInputItem } from 'openai/resources/responses/responses'
import { Agent, OpenAIProvider, Runner, setTracingDisabled, tool as agentTool } from '@openai/agents'
import { createOpenAI } from '@ai-sdk/openai'
import { generateText, Output } from 'ai'
import { z } from 'zod'
import { startStack, type Stack } from '../helper.ts'
import { aiSdkWeatherRun, weatherTurn } from './helpers/ai-sdk.ts'
import { chatRequests, clientTestEnv, toolResults } from './helpers/tool-turns.ts'

// The clients of the OpenAI Responses API, as users run them, against POST /v1/responses of the gateway in front
// of the simulator (which speaks Chat Completions only: the gateway translates). openai-node, the OpenAI Agents
// SDK and the Vercel AI SDK's default OpenAI provider (openai(model) is the Responses provider).

const MODEL = 'qwen3-coder-plus'
const KEY = 'responses-client-key'
const replyTo = (text: string) => 'Hello from the Qwen simulator! You said: ' + text

// The Agents SDK would otherwise export traces to OpenAI's platform.
setTracingDisabled(true)

/** A stack whose gateway requires a client key, so each client's way of sending one is checked too. */
const stack = (t: Parameters<typeof startStack>[0]) => startStack(t, { env: clientTestEnv(KEY) })

const openaiClient = (s: Stack) => new OpenAI({ baseURL: s.baseURL, apiKey: KEY, maxRetries: 0, timeout: 10_000 })

/** The weather tool every client offers: the model calls it for Paris, then answers from its result. */
const WEATHER = {
  name: 'get_weather',
  description: 'The current weather in a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', description: 'The city' } },
    required: ['city'],
    additionalProperties: false
  }
} as const

t.test('openai-node responses.create(): text, ids, usage', async t => {
  const s = await stack(t)
  const response = await openaiClient(s).responses.create({ model: MODEL, input: 'What is Qwen?' })
  t.equal(response.object, 'response')
  t.match(response.id, /^resp_/)
  t.equal(response.status, 'completed')
  t.equal(response.output_text, replyTo('What is Qwen?'))
  const message = response.output.find(item => item.type === 'message')
  t.ok(message, 'a message item')
  if (message?.type === 'message') {
    t.equal(message.role, 'assistant')
    t.match(message.id, /^msg_/)
    t.match(message.content[0], { type: 'output_text', text: replyTo('What is Qwen?'), annotations: [] })
  }
  t.type(response.usage?.input_tokens, 'number')
  t.ok((response.usage?.output_tokens ?? 0) > 0, 'output tokens counted')
  t.equal(response.usage?.total_tokens, (response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0))
  const [upstream] = chatRequests(s.sim.requests)
  t.equal(upstream?.body?.model, MODEL)
  t.match(upstream?.body?.messages, [{ role: 'user' }])
})

t.test('openai-node responses.stream().finalResponse(): deltas make the text, the final response is whole', async t => {
  const s = await stack(t)
  s.sim.setOverride(() => ({ chunkSize: 5 }))
  const stream = openaiClient(s).responses.stream({ model: MODEL, input: 'stream it please' })
  const deltas: string[] = []
  const types: string[] = []
  stream.on('response.output_text.delta', event => deltas.push(event.delta))
  stream.on('event', event => types.push(event.type))
  const response = await stream.finalResponse()
  t.equal(response.status, 'completed')
  t.equal(response.output_text, replyTo('stream it please'))
  t.ok(deltas.length > 1, `the text came in ${deltas.length} deltas`)
  t.equal(deltas.join(''), replyTo('stream it please'))
  t.equal(types[0], 'response.created')
  t.equal(types.at(-1), 'response.completed')
  t.ok((response.usage?.output_tokens ?? 0) > 0, 'usage in the final response')
})

t.test('openai-node: a function tool round trip, replaying the whole input (store: false, as Codex does)', async t => {
  const s = await stack(t)
  weatherTurn(s)
  const client = openaiClient(s)
  const tools = [{ type: 'function' as const, ...WEATHER, strict: false }]
  const input: ResponseInputItem[] = [{ role: 'user', content: 'What is the weather in Paris?' }]
  const first = await client.responses.create({ model: MODEL, input, tools, store: false })
  t.equal(first.status, 'completed')
  const calls = first.output.filter((item): item is ResponseFunctionToolCall => item.type === 'function_call')
  t.equal(calls.length, 1, 'one function call')
  const [call] = calls
  if (call === undefined) return
  t.equal(call.name, WEATHER.name)
  t.same(JSON.parse(call.arguments), { city: 'Paris' })
  t.match(call.call_id, /\S/)
  t.notOk('namespace' in call && call.namespace, 'no namespace on a top-level function')

  const result = '{"city":"Paris","forecast":"sunny","celsius":21}'
  const second = await client.responses.create({
    model: MODEL,
    tools,
    store: false,
    input: [...input, ...first.output as ResponseInputItem[], { type: 'function_call_output', call_id: call.call_id, output: result }]
  })
  t.equal(second.status, 'completed')
  t.equal(second.output_text, `Weather report: ${result}`)
  const upstream = chatRequests(s.sim.requests)
  t.equal(upstream.length, 2)
  t.same(toolResults(upstream[1]), [result], 'the tool result reached the model as a tool message')
  const assistant = upstream[1].body.messages.find((message: any) => message.role === 'assistant')
  t.equal(assistant?.tool_calls?.[0]?.id, call.call_id, 'the call id is kept byte for byte')
  t.equal(upstream[1].body.messages.find((message: any) => message.role === 'tool')?.tool_call_id, call.call_id)
})

t.test('openai-node: a function tool round trip through previous_response_id (stored responses)', async t => {
  const s = await stack(t)
  weatherTurn(s)
  const client = openaiClient(s)
  const tools = [{ type: 'function' as const, ...WEATHER, strict: false }]
  const first = await client.responses.create({ model: MODEL, input: 'Weather in Paris?', tools })
  const call = first.output.find((item): item is ResponseFunctionToolCall => item.type === 'function_call')
  t.ok(call, 'a function call')
  if (call === undefined) return
  const second = await client.responses.create({
    model: MODEL,
    tools,
    previous_response_id: first.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }]
  })
  t.equal(second.output_text, 'Weather report: sunny')
  t.equal(second.previous_response_id, first.id)
  const upstream = chatRequests(s.sim.requests)
  t.match(upstream[1]?.body?.messages, [{ role: 'user', content: /Weather in Paris/ }, { role: 'assistant' }, { role: 'tool', content: 'sunny' }])
})

t.test('OpenAI Agents SDK run(): an agent with a function tool, plain and streamed', async t => {
  const s = await stack(t)
  weatherTurn(s)
  const calls: string[] = []
  const getWeather = agentTool({
    name: WEATHER.name,
    description: WEATHER.description,
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city)
      return `sunny in ${city}`
    }
  })
  const agent = new Agent({ name: 'Forecaster', instructions: 'Answer with the weather tool.', model: MODEL, tools: [getWeather] })
  const runner = new Runner({
    modelProvider: new OpenAIProvider({ openAIClient: openaiClient(s), useResponses: true }),
    tracingDisabled: true
  })

  const result = await runner.run(agent, 'What is the weather in Paris?', { maxTurns: 4 })
  t.equal(result.finalOutput, 'Weather report: sunny in Paris')
  t.same(calls, ['Paris'], 'the tool ran once')
  t.equal(chatRequests(s.sim.requests).length, 2)
  t.match(chatRequests(s.sim.requests)[0].body.messages[0], { role: 'system', content: 'Answer with the weather tool.' })

  const streamed = await runner.run(agent, 'And now, streamed?', { maxTurns: 4, stream: true })
  let text = ''
  for await (const event of streamed) {
    if (event.type === 'raw_model_stream_event' && event.data.type === 'output_text_delta') text += event.data.delta
  }
  await streamed.completed
  t.equal(streamed.finalOutput, 'Weather report: sunny in Paris')
  t.equal(text, 'Weather report: sunny in Paris', 'the text streamed as deltas')
  t.same(calls, ['Paris', 'Paris'])
})

t.test('Vercel AI SDK (openai Responses provider): generateText and streamText, a tool, stopWhen stepCountIs(3)', async t => {
  const s = await stack(t)
  await aiSdkWeatherRun(t, s, createOpenAI({ baseURL: s.baseURL, apiKey: KEY })(MODEL))
})

t.test('reasoning: openai-node sees a reasoning item before the message, the AI SDK reasoning text', async t => {
  const s = await stack(t)
  const thought = 'The user greets me; a short answer will do.'
  s.sim.setOverride(() => ({ reasoning: thought, chunkSize: 6 }))
  const client = openaiClient(s)

  const response = await client.responses.stream({ model: MODEL, input: 'Hi there', reasoning: { effort: 'medium', summary: 'auto' } }).finalResponse()
  t.equal(response.status, 'completed')
  t.same(response.output.map(item => item.type), ['reasoning', 'message'])
  const [reasoning] = response.output
  if (reasoning?.type === 'reasoning') {
    t.equal(reasoning.summary.map(part => part.text).join(''), thought)
  }
  t.equal(response.output_text, replyTo('Hi there'))
  t.ok((response.usage?.output_tokens_details?.reasoning_tokens ?? 0) > 0, 'reasoning tokens counted')

  // The AI SDK knows no Qwen model as a reasoning one: without forceReasoning it drops reasoningEffort and
  // reasoningSummary ("not supported for non-reasoning models"), and without a summary it shows no reasoning.
  const openai = createOpenAI({ baseURL: s.baseURL, apiKey: KEY })
  const generated = await generateText({
    model: openai(MODEL),
    prompt: 'Hi there',
    maxRetries: 0,
    providerOptions: { openai: { reasoningEffort: 'medium', reasoningSummary: 'auto', forceReasoning: true } }
  })
  t.equal(generated.text, replyTo('Hi there'))
  t.equal(generated.reasoningText, thought)
})

t.test('Vercel AI SDK (openai Responses provider): structured output with Output.object reaches the model as a json_schema response_format', async t => {
  const s = await stack(t)
  s.sim.setOverride(() => ({ reply: '{"city":"Paris","celsius":21}' }))
  const result = await generateText({
    model: createOpenAI({ baseURL: s.baseURL, apiKey: KEY })(MODEL),
    prompt: 'Which city and how warm?',
    maxRetries: 0,
    output: Output.object({ name: 'forecast', schema: z.object({ city: z.string(), celsius: z.number() }) })
  })
  t.same(result.output, { city: 'Paris', celsius: 21 }, 'the reply parsed and validated against the schema')
  t.equal(result.text, '{"city":"Paris","celsius":21}')

  const [upstream] = chatRequests(s.sim.requests)
  t.match(upstream?.body?.response_format, {
    type: 'json_schema',
    json_schema: {
      name: 'forecast',
      schema: {
        type: 'object',
        properties: { city: { type: 'string' }, celsius: { type: 'number' } },
        required: ['city', 'celsius'],
        additionalProperties: false
      },
      strict: true
    }
  }, 'text.format became the chat response_format with the schema')
  t.match(upstream?.body?.messages, [{ role: 'user', content: /Which city/ }])
})

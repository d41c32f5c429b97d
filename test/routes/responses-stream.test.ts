import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { build, postJson, readEvents, startStack, type SseEvent } from '../helper.ts'
import { grammarProblems } from '../unit/responses-grammar.ts'

// The Responses event stream over real HTTP: its grammar (wire-apis §1.5), terminal states (§1.7), heartbeats, a
// client leaving, and the response stored once the stream ends.

const reply = (text: string) => `Hello from the Qwen simulator! You said: ${text}`
const data = (events: SseEvent[]) => events.map(event => JSON.parse(event.data))

async function stream (baseURL: string, body: Record<string, unknown>) {
  const res = await postJson(`${baseURL}/responses`, { model: 'qwen-plus', stream: true, ...body })
  return { res, events: await readEvents(res) }
}

t.test('a streamed answer: SSE headers, event: and data: on every frame, the whole grammar, then stored', async t => {
  const { baseURL } = await startStack(t)
  const { res, events } = await stream(baseURL, { input: 'hi there', reasoning: { summary: 'auto' }, include: ['reasoning.encrypted_content'], sim: { reasoning: 'Greeting; answer.', chunkSize: 4 } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.equal(res.headers.get('x-accel-buffering'), 'no')
  t.same(grammarProblems(events), [])
  const all = data(events)
  t.ok(all.every(event => typeof event.type === 'string' && (event.type.startsWith('response.') || event.type === 'keepalive')), 'no chat-shaped chunk leaks into the Responses stream')
  t.notOk(events.some(event => event.data === '[DONE]'), 'no [DONE] on this API')
  t.equal(all.filter(event => event.type === 'response.reasoning_summary_text.delta').map(event => event.delta).join(''), 'Greeting; answer.')
  t.ok(all.filter(event => event.type === 'response.output_text.delta').length > 3, 'text arrives as many deltas')
  const completed = all.at(-1)
  t.equal(completed.type, 'response.completed')
  t.match(completed.response.output, [
    { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Greeting; answer.' }], encrypted_content: /^qg1\./ },
    { type: 'message', content: [{ type: 'output_text', text: reply('hi there'), annotations: [] }] }
  ])
  t.ok(completed.response.usage.output_tokens_details.reasoning_tokens > 0, 'reasoning tokens counted')

  const stored = await (await fetch(`${baseURL}/responses/${completed.response.id}`)).json()
  t.same(stored, completed.response, 'GET returns what response.completed carried')
})

t.test('openai-node responses.stream(): reasoning, text and parallel tool calls accumulate into the final response', async t => {
  const { baseURL } = await startStack(t)
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
  const text = await client.responses.stream({ model: 'qwen-plus', input: 'plain', reasoning: { summary: 'auto' }, ...({ sim: { reasoning: 'Hmm.', chunkSize: 3 } } as object) }).finalResponse()
  t.equal(text.output_text, reply('plain'))
  t.match(text.output[0], { type: 'reasoning', summary: [{ text: 'Hmm.' }] })

  const tools = [{ type: 'function' as const, name: 'read', parameters: { type: 'object', properties: { f: { type: 'string' } } }, strict: false }]
  const calls = await client.responses.stream({
    model: 'qwen-plus',
    input: 'read two',
    tools,
    ...({ sim: { chunkSize: 4, toolCalls: [{ name: 'read', arguments: '{"f":"a.txt"}' }, { name: 'read', arguments: '{"f":"b.txt"}' }] } } as object)
  }).finalResponse()
  t.equal(calls.status, 'completed')
  t.match(calls.output, [
    { type: 'function_call', name: 'read', arguments: '{"f":"a.txt"}', call_id: /^call_/, status: 'completed' },
    { type: 'function_call', name: 'read', arguments: '{"f":"b.txt"}', call_id: /^call_/, status: 'completed' }
  ])
  t.not(calls.output[0].id, calls.output[1].id)
})

t.test('a failure mid-stream ends with response.failed, its error code, the partial output; the failed response is stored', async t => {
  const { baseURL } = await startStack(t)
  const cases: Array<[object, string]> = [
    [{ midStream: 'reset' }, 'server_error'],
    [{ midStream: 'inspection' }, 'invalid_prompt'],
    [{ midStream: 'event_error' }, 'insufficient_quota']
  ]
  for (const [sim, code] of cases) {
    const { res, events } = await stream(baseURL, { input: 'one two three four five', sim: { ...sim, chunkSize: 3, midStreamAfter: 3 } })
    t.equal(res.status, 200)
    t.same(grammarProblems(events), [], code)
    const failed = data(events).at(-1)
    t.equal(failed.type, 'response.failed')
    t.match(failed.response, { status: 'failed', error: { code, message: /\S/ } })
    t.match(failed.response.output, [{ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text: /^Hel/ }] }], `${code}: partial output`)
    t.ok(failed.response.usage, 'usage present')
    const stored = await (await fetch(`${baseURL}/responses/${failed.response.id}`)).json() as any
    t.equal(stored.status, 'failed')
  }
})

/** An upstream whose answers stop at the output limit (finish_reason length), as JSON or as a stream. */
async function lengthUpstream (t: Parameters<typeof build>[0]) {
  const server = createServer((req, res) => {
    let raw = ''
    req.on('data', chunk => { raw += chunk })
    req.on('end', () => {
      const body = JSON.parse(raw)
      const usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }
      if (body.stream !== true) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'cut sh' }, finish_reason: 'length' }], usage }))
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
      res.end(chunk({ role: 'assistant', content: 'cut ' }) + chunk({ content: 'sh' }, 'length') +
        `data: ${JSON.stringify({ id: 'chatcmpl-1', choices: [], usage })}\n\ndata: [DONE]\n\n`)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise(resolve => server.close(resolve)))
  const gateway = await build(t, { DASHSCOPE_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` })
  await gateway.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(gateway.server.address() as AddressInfo).port}/v1`
}

t.test('finish_reason length → response.incomplete (max_output_tokens) with output and usage, streamed and as JSON', async t => {
  const baseURL = await lengthUpstream(t)
  const { events } = await stream(baseURL, { input: 'long story', max_output_tokens: 5 })
  t.same(grammarProblems(events), [])
  const last = data(events).at(-1)
  t.equal(last.type, 'response.incomplete')
  t.match(last.response, { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, usage: { input_tokens: 12, output_tokens: 5, total_tokens: 17 } })
  t.match(last.response.output, [{ type: 'message', status: 'incomplete', content: [{ text: 'cut sh' }] }])

  const json = await (await postJson(`${baseURL}/responses`, { model: 'qwen-plus', input: 'long story' })).json() as any
  t.match(json, { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, usage: { output_tokens: 5 }, output: [{ content: [{ text: 'cut sh' }] }] })
})

t.test('a silent upstream: the response opens at the first heartbeat, then comments keep the connection alive', async t => {
  const { baseURL } = await startStack(t, { env: { HEARTBEAT_INTERVAL_MS: '50' } })
  const res = await postJson(`${baseURL}/responses`, { model: 'qwen-plus', stream: true, input: 'slow', sim: { ttfbMs: 400 } })
  t.equal(res.status, 200, 'headers went out before the upstream answered')
  const raw = await res.text()
  t.match(raw, /^event: response\.created\ndata: /, 'response.created first: clients need it before anything else')
  t.ok((raw.match(/^: keep-alive$/gm) ?? []).length >= 3, 'comment heartbeats while the upstream is silent')
  t.match(raw, /event: response\.completed\n/)
})

t.test('a client that leaves mid-stream cancels the upstream request', async t => {
  const { baseURL, sim } = await startStack(t)
  const controller = new AbortController()
  const res = await fetch(`${baseURL}/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'qwen-plus', stream: true, input: 'a b c d e f g h i j k l m n o p', sim: { chunkSize: 1, intervalMs: 50 } }),
    signal: controller.signal
  })
  const closed = sim.waitFor('client-closed', 5000)
  const reader = res.body!.getReader()
  await reader.read()
  controller.abort()
  const upstream = await closed
  t.ok(upstream.clientClosedAt, 'the upstream saw the gateway hang up')
})

import t from 'tap'
import type { Test } from 'tap'
import { startSimulator } from './index.ts'
import type { Simulator, SimulatorOptions } from './index.ts'

const messages = [{ role: 'user', content: 'ping é' }]

async function start (t: Test, options?: SimulatorOptions): Promise<Simulator> {
  const sim = await startSimulator(options)
  t.teardown(() => sim.close())
  return sim
}

function chat (sim: Simulator, body: Record<string, unknown>, init: RequestInit = {}): Promise<Response> {
  return fetch(`${sim.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init
  })
}

async function json (res: Response): Promise<any> {
  return await res.json()
}

/** `data:` payloads of an SSE body, in order. */
function dataLines (text: string): string[] {
  return text.split(/\r?\n\r?\n/).flatMap((block) => block.split(/\r?\n/))
    .filter((line) => line.startsWith('data: ')).map((line) => line.slice('data: '.length))
}

t.test('non-stream answer has the DashScope JSON shape', async (t) => {
  const sim = await start(t)
  const res = await chat(sim, { model: 'qwen-plus', messages, n: 2, sim: { reply: 'Hi there', usage: { cached_tokens: 1 } } })
  t.equal(res.status, 200)
  const requestId = res.headers.get('x-request-id')
  t.match(requestId, /^[0-9a-f-]{36}$/)
  t.equal(res.headers.get('server'), 'istio-envoy')
  t.notOk([...res.headers.keys()].some((name) => name.startsWith('x-ratelimit')))
  const body = await json(res)
  t.same(body, {
    id: `chatcmpl-${requestId}`,
    object: 'chat.completion',
    created: body.created,
    model: 'qwen-plus',
    system_fingerprint: null,
    choices: [0, 1].map((index) => ({
      index,
      finish_reason: 'stop',
      logprobs: null,
      message: { role: 'assistant', content: 'Hi there' }
    })),
    usage: { prompt_tokens: 2, completion_tokens: 4, total_tokens: 6, prompt_tokens_details: { cached_tokens: 1 } }
  })
  t.ok(Number.isInteger(body.created))
  t.equal(sim.requests[0].body.sim.reply, 'Hi there')
  t.ok((await sim.waitFor('finished')).finishedAt)
})

t.test('stream framing, role chunk, usage chunk and [DONE]', async (t) => {
  const sim = await start(t)
  const reply = 'Stream 😀 me, é'
  const res = await chat(sim, { model: 'qwen-flash', messages, stream: true, stream_options: { include_usage: true }, sim: { reply, chunkSize: 3 } })
  t.equal(res.headers.get('content-type'), 'text/event-stream;charset=UTF-8')
  const text = await res.text()
  t.notMatch(text, /^event:/m, 'no event: lines on success')
  const data = dataLines(text)
  t.equal(data.at(-1), '[DONE]')
  const chunks = data.slice(0, -1).map((line) => JSON.parse(line))
  const usage = chunks.pop()
  const id = `chatcmpl-${res.headers.get('x-request-id')}`
  t.same(chunks[0].choices[0].delta, { role: 'assistant', content: '' })
  t.ok(chunks.every((chunk) => chunk.id === id && chunk.usage === null && chunk.object === 'chat.completion.chunk'))
  t.ok(chunks.slice(1).every((chunk) => !('role' in chunk.choices[0].delta)), 'role only in the first chunk')
  t.equal(chunks.map((chunk) => chunk.choices[0].delta.content).join(''), reply)
  t.equal(chunks.at(-1).choices[0].finish_reason, 'stop')
  t.same(usage, {
    id,
    object: 'chat.completion.chunk',
    created: chunks[0].created,
    model: 'qwen-flash',
    choices: [],
    usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7, completion_tokens_details: null, prompt_tokens_details: { cached_tokens: 0 } }
  })

  const plain = dataLines(await (await chat(sim, { model: 'qwen-flash', messages, stream: true })).text())
  t.notOk(plain.some((line) => line.includes('"choices":[]')), 'no usage chunk without include_usage')
})

t.test('split JSON writes still carry the exact text', async (t) => {
  const sim = await start(t)
  const res = await chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { reply: 'é😀 ok', framing: { splitJson: true, crlf: true } } })
  const chunks = dataLines(await res.text()).slice(0, -1).map((line) => JSON.parse(line))
  t.equal(chunks.map((chunk) => chunk.choices[0].delta.content).join(''), 'é😀 ok')
})

t.test('tool-call stream has the DashScope quirks', async (t) => {
  const sim = await start(t)
  const toolCalls = [{ name: 'read_file', arguments: '{"path": "a.ts"}' }, { name: 'list', arguments: '{}' }]
  const res = await chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { toolCalls } })
  const chunks = dataLines(await res.text()).slice(0, -1).map((line) => JSON.parse(line))
  const choices = chunks.map((chunk) => chunk.choices[0])
  const first = choices[0].delta
  t.equal(first.role, 'assistant')
  t.equal(first.content, null)
  t.match(first.tool_calls[0], { index: 0, type: 'function', function: { name: 'read_file', arguments: '{"path": ' } })
  t.match(first.tool_calls[0].id, /^call_[0-9a-f]{22}$/)
  t.same(choices[1].delta.tool_calls[0], { index: 0, id: '', type: 'function', function: { arguments: '"a.ts"}' } })
  t.match(choices[2].delta.tool_calls[0], { index: 1, function: { name: 'list', arguments: '{}' } })
  t.same(choices[3], { delta: { tool_calls: [{ index: 1, id: '', type: 'function', function: { arguments: null } }] }, index: 0 })
  t.same(choices[4], { index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' })
  t.equal(choices.length, 5)

  const [choice] = (await json(await chat(sim, { model: 'qwen-plus', messages, sim: { toolCalls } }))).choices
  t.equal(choice.message.content, '')
  t.equal(choice.finish_reason, 'tool_calls')
  t.same(choice.message.tool_calls.map((call: any) => call.function), toolCalls)
})

t.test('error bodies and auth', async (t) => {
  const sim = await start(t, { apiKeys: ['sk-good'] })
  const auth = { 'content-type': 'application/json', authorization: 'Bearer sk-good' }
  const denied = await chat(sim, { model: 'qwen-plus', messages })
  t.equal(denied.status, 401)
  t.match(await json(denied), { error: { code: 'invalid_api_key', type: 'invalid_request_error', param: null }, request_id: denied.headers.get('x-request-id') })

  const quota = await chat(sim, { model: 'qwen-plus', messages, sim: { error: 'allocation_quota_unwrapped' } }, { headers: auth })
  t.equal(quota.status, 429)
  t.equal(quota.headers.get('retry-after'), null)
  t.same(Object.keys(await json(quota)), ['code', 'message', 'request_id'])

  const unknown = await chat(sim, { model: 'qwen-nope', messages }, { headers: auth })
  t.equal(unknown.status, 404)
  t.same((await json(unknown)).error, {
    message: 'The model `qwen-nope` does not exist or you do not have access to it.',
    type: 'invalid_request_error',
    param: null,
    code: 'model_not_found'
  })

  const html = await chat(sim, { model: 'qwen-plus', messages, sim: { error: 'bad_gateway_html' } }, { headers: auth })
  t.equal(html.status, 502)
  t.equal(html.headers.get('content-type'), 'text/html')
  t.match(await html.text(), /<html>/)
})

t.test('a stall ended by the client emits client-closed', async (t) => {
  const sim = await start(t)
  const controller = new AbortController()
  const pending = chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { stall: 'headers' } }, { signal: controller.signal })
  pending.catch(() => {})
  await sim.waitFor('request')
  controller.abort()
  const rec = await sim.waitFor('client-closed')
  t.ok(rec.clientClosedAt !== undefined && rec.clientClosedAt >= rec.startedAt)
  t.equal(rec.firstByteAt, undefined)
  t.equal(rec.finishedAt, undefined)
  await t.rejects(pending)
})

t.test('close() ends a stalled stream without hanging', async (t) => {
  const sim = await startSimulator()
  const res = await chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { stall: 'after_first' } })
  const reader = res.body!.getReader()
  const first = new TextDecoder().decode((await reader.read()).value)
  t.match(first, /"role":"assistant"/)
  const started = performance.now()
  await sim.close()
  t.ok(performance.now() - started < 500, 'close() returned quickly')
  await t.rejects(reader.read(), 'the client sees the stream cut')
  t.equal(sim.requests[0].clientClosedAt, undefined, 'not reported as a client close')
})

t.test('framing.spaced writes JSON as Python does, one line per event', async (t) => {
  const sim = await start(t)
  const body = { model: 'qwen-plus', messages, stream: true, stream_options: { include_usage: true }, sim: { reply: 'a, b: "c"', toolCalls: undefined, framing: { spaced: true } } }
  const text = await (await chat(sim, body)).text()
  const data = dataLines(text)
  t.equal(data.at(-1), '[DONE]')
  const chunks = data.slice(0, -1)
  t.ok(chunks.every((line) => line.startsWith('{"id": "chatcmpl-') && line.includes('", "object": "chat.completion.chunk", ')), 'every key and member spaced')
  t.match(chunks.at(-1), /"choices": \[\], "usage": \{"prompt_tokens": \d+, /)
  t.match(chunks.at(-2), /"finish_reason": "stop"\}\]\}$/)
  t.notMatch(text, /[^\n]\n[^\n]/, 'no newline inside an event')
  const parsed = chunks.map((line) => JSON.parse(line))
  t.equal(parsed.slice(0, -1).map((chunk) => chunk.choices[0].delta.content).join(''), 'a, b: "c"', 'text intact')
  const compact = dataLines(await (await chat(sim, { ...body, sim: { reply: 'a, b: "c"' } })).text())
  t.same(parsed.map((chunk) => Object.keys(chunk)), compact.slice(0, -1).map((line) => Object.keys(JSON.parse(line))), 'same keys as the compact stream')
})

t.test('hugeFrame sends one event of N bytes that never ends, and holds the connection', async (t) => {
  const sim = await start(t)
  const bytes = 3 * 1024 * 1024
  const controller = new AbortController()
  const res = await chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { reply: 'one two three', hugeFrame: { bytes } } }, { signal: controller.signal })
  const reader = res.body!.getReader()
  const received: Buffer[] = []
  let size = 0
  while (true) {
    const { value } = await reader.read()
    received.push(Buffer.from(value!))
    size += value!.length
    const text = Buffer.concat(received).toString('latin1')
    const start = text.indexOf('data: {', text.lastIndexOf('\n\n'))
    if (start !== -1 && size - start >= bytes) break
  }
  const text = Buffer.concat(received).toString('latin1')
  const events = text.split('\n\n')
  t.equal(events.length, 4, 'the role chunk and two text chunks before it, then the unfinished event')
  t.match(events[0], /"role":"assistant"/)
  t.equal(events[3].length, bytes, 'the event has the requested size')
  t.match(events[3], /^data: \{"id":"chatcmpl-[^"]+","object":"chat\.completion\.chunk",.*"delta":\{"content":"xxxx/)
  t.notOk(events[3].includes('\n'), 'no line end at all')
  controller.abort()
  await sim.waitFor('client-closed')
  t.equal(sim.requests[0].finishedAt, undefined, 'the simulator never ended the answer')
})

t.test('hugeFrame complete: a valid chunk of N bytes, then the rest of the stream', async (t) => {
  const sim = await start(t)
  const bytes = 300_000
  const text = await (await chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { reply: 'one two three', hugeFrame: { bytes, complete: true }, framing: { crlf: true } } })).text()
  const events = text.split('\r\n\r\n').filter(Boolean)
  t.equal(Buffer.byteLength(events[3]) + 4, bytes, 'the event, its blank line included, has the requested size')
  const chunks = dataLines(text)
  t.equal(chunks.at(-1), '[DONE]')
  const contents = chunks.slice(0, -1).map((line) => JSON.parse(line).choices[0].delta.content)
  t.match(contents[3], /^x{299000,}$/, 'all of it content')
  t.equal([...contents.slice(0, 3), ...contents.slice(4)].join(''), 'one two three')
})

t.test('malformedFrame: unreadable events, after padding, then the rest of the stream', async (t) => {
  const sim = await start(t)
  const expected = {
    usage: /"choices":\[\],"usage":\{"prompt_tokens":12,$/,
    tool_calls: /"tool_calls":\[\{"index":0,"id":"call_\w+","type":"function","function":\{"name":"read_file",$/,
    choices_string: /"choices":"x","usage":\{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2\}\}$/,
    tool_calls_object: /"delta":\{"content":"","tool_calls":\{\}\},/
  }
  for (const [kind, pattern] of Object.entries(expected)) {
    const data = dataLines(await (await chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { reply: 'one two three', malformedFrame: { kind, paddingBytes: 100_000 } } })).text())
    t.equal(data.at(-1), '[DONE]', `${kind}: the stream goes on after it`)
    const broken = data.findIndex((line) => pattern.test(line))
    t.equal(broken, 3 + 7, `${kind}: after the role chunk, two text chunks and seven padding chunks`)
    t.same(data.slice(3, 10).map((line) => JSON.parse(line).choices[0].delta.content.length), [100_000, ...Array(6).fill(16 * 1024)], 'one large padding chunk, then six of 16 KiB')
    if (kind === 'usage' || kind === 'tool_calls') t.throws(() => JSON.parse(data[broken]), SyntaxError, `${kind}: not JSON`)
    else t.ok(JSON.parse(data[broken]), `${kind}: JSON of an unexpected shape`)
  }
  const spaced = dataLines(await (await chat(sim, { model: 'qwen-plus', messages, stream: true, sim: { malformedFrame: { kind: 'usage' }, framing: { spaced: true } } })).text())
  t.ok(spaced.some((line) => line.endsWith('"usage": {"prompt_tokens": 12, ')), 'spaced too')
})

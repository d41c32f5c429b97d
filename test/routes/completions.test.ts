import t from 'tap'
import type { RecordedRequest } from '../simulator/index.ts'
import { build, payloads, postJson, readEvents, startStack } from '../helper.ts'

/** A response body as JSON, typed loosely: the tests check its shape themselves. */
const readJson = async (res: Response): Promise<any> => res.json()

// Legacy /v1/completions, emulated over the upstream's chat API.

const chatRequests = (requests: RecordedRequest[]) =>
  requests.filter(request => request.method === 'POST' && request.path.split('?')[0] === '/v1/chat/completions')

t.test('JSON: a string prompt becomes one chat call and a text_completion', async t => {
  const { sim, baseURL } = await startStack(t)
  const reply = 'Paris is the capital of France.'
  const body = {
    model: 'qwen-plus',
    prompt: 'What is the capital of France?',
    max_tokens: 50,
    stop: ['\n\n', 'END'],
    temperature: 0.3,
    top_p: 0.9,
    n: 1,
    seed: 42,
    enable_thinking: false,
    sim: { reply, usage: { prompt_tokens: 17, completion_tokens: 9 } }
  }
  const res = await postJson(`${baseURL}/completions`, body)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const answer = await readJson(res)

  t.match(answer.id, /^cmpl-./)
  t.equal(answer.object, 'text_completion')
  t.ok(Number.isInteger(answer.created), 'created is an integer')
  t.equal(answer.model, 'qwen-plus')
  t.same(answer.choices, [{ text: reply, index: 0, logprobs: null, finish_reason: 'stop' }])
  t.equal(answer.usage.prompt_tokens, 17, 'the upstream\'s prompt tokens')
  t.equal(answer.usage.completion_tokens, 9, 'the upstream\'s completion tokens')
  t.equal(answer.usage.total_tokens, 26, 'the upstream\'s total tokens')

  const calls = chatRequests(sim.requests)
  t.equal(calls.length, 1, 'one chat request upstream')
  const upstream = calls[0].body
  t.same(upstream.messages, [{ role: 'user', content: body.prompt }], 'one user message holding the prompt')
  t.equal(upstream.model, 'qwen-plus')
  t.equal(upstream.max_tokens, 50)
  t.same(upstream.stop, ['\n\n', 'END'])
  t.equal(upstream.temperature, 0.3)
  t.equal(upstream.top_p, 0.9)
  t.equal(upstream.n, 1)
  t.equal(upstream.seed, 42)
  t.equal(upstream.enable_thinking, false, 'unknown fields pass through')
  t.same(upstream.sim, body.sim, 'the simulator scenario passes through untouched')
  t.notOk('prompt' in upstream, 'no legacy prompt field upstream')
  t.not(upstream.stream, true, 'not streamed')
})

t.test('JSON: an array prompt with n=2 gives prompt-major choice indexes and summed usage', async t => {
  const { sim, baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/completions`, {
    model: 'qwen-plus',
    prompt: ['a', 'b'],
    n: 2,
    sim: { usage: { prompt_tokens: 3, completion_tokens: 5 } }
  })
  t.equal(res.status, 200)
  const answer = await readJson(res)
  t.equal(answer.object, 'text_completion')
  t.equal(answer.choices.length, 4)
  t.same(answer.choices.map((choice: { index: number }) => choice.index), [0, 1, 2, 3])
  // The simulator echoes the last user message, so each choice shows which prompt it answers.
  const byIndex = [...answer.choices].sort((x: { index: number }, y: { index: number }) => x.index - y.index)
  t.match(byIndex[0].text, /said: a$/)
  t.match(byIndex[1].text, /said: a$/)
  t.match(byIndex[2].text, /said: b$/)
  t.match(byIndex[3].text, /said: b$/)
  for (const choice of answer.choices) {
    t.equal(choice.logprobs, null)
    t.equal(choice.finish_reason, 'stop')
  }
  t.equal(answer.usage.prompt_tokens, 6, 'prompt tokens summed over both calls')
  t.equal(answer.usage.completion_tokens, 10, 'completion tokens summed over both calls')
  t.equal(answer.usage.total_tokens, 16)
  t.same(Object.keys(answer.usage), ['prompt_tokens', 'completion_tokens', 'total_tokens', 'cache_read_input_tokens', 'prompt_tokens_details'],
    'the fields a one-prompt answer has (test/routes/consistency.test.ts), no more and no fewer')

  const calls = chatRequests(sim.requests)
  t.equal(calls.length, 2, 'one chat request per prompt')
  t.same(calls.map(call => call.body.messages[0].content).sort(), ['a', 'b'])
  for (const call of calls) {
    t.equal(call.body.n, 2)
    t.equal(call.body.messages.length, 1)
  }
})

t.test('streaming: text_completion chunks arrive while the upstream is still sending', async t => {
  const { sim, baseURL } = await startStack(t)
  const reply = 'one two three four five six'
  const sentAt = performance.now()
  const res = await postJson(`${baseURL}/completions`, {
    model: 'qwen-plus',
    prompt: 'count',
    stream: true,
    sim: { reply, intervalMs: 30 }
  })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  t.match(res.headers.get('cache-control'), /no-cache/)
  t.equal(res.headers.get('x-accel-buffering'), 'no')
  const events = await readEvents(res, sentAt)

  t.equal(events.at(-1)?.data, '[DONE]', '[DONE] comes last')
  t.equal(events.filter(event => event.data === '[DONE]').length, 1)
  const chunks = payloads(events)
  t.ok(chunks.length >= 2, 'several chunks')
  for (const chunk of chunks) {
    t.match(chunk.id, /^cmpl-./)
    t.equal(chunk.object, 'text_completion')
    t.ok(Number.isInteger(chunk.created))
    t.equal(chunk.model, 'qwen-plus')
    t.notOk(chunk.error, 'no error event')
  }
  t.equal(new Set(chunks.map(chunk => chunk.id)).size, 1, 'one id for the whole stream')
  const choices = chunks.flatMap(chunk => chunk.choices)
  for (const choice of choices) {
    t.equal(choice.index, 0)
    t.equal(choice.logprobs, null)
  }
  t.equal(choices.map(choice => choice.text).join(''), reply, 'the texts join up to the reply')
  t.equal(choices.at(-1).finish_reason, 'stop', 'finish_reason at the end')
  t.ok(choices.slice(0, -1).every(choice => choice.finish_reason === null), 'no finish_reason before the end')
  t.notOk(chunks.some(chunk => chunk.usage), 'no usage chunk without include_usage')

  const [call] = chatRequests(sim.requests)
  t.equal(call.body.stream, true, 'streamed upstream')
  t.ok(call.finishedAt, 'the upstream finished')
  const firstTextAt = sentAt + events[0].at
  t.ok(firstTextAt < (call.finishedAt as number) - 60,
    `first chunk at ${firstTextAt.toFixed(1)} before the upstream finished at ${(call.finishedAt as number).toFixed(1)}`)
  t.ok(events.at(-1)!.at - events[0].at >= 90, 'chunks were spread over time, not buffered')
})

t.test('streaming with include_usage: one usage chunk before [DONE]', async t => {
  const { baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/completions`, {
    model: 'qwen-plus',
    prompt: 'hello',
    stream: true,
    stream_options: { include_usage: true },
    sim: { reply: 'Hi there friend', usage: { prompt_tokens: 11, completion_tokens: 4 } }
  })
  t.equal(res.status, 200)
  const events = await readEvents(res)
  t.equal(events.at(-1)?.data, '[DONE]')
  const chunks = payloads(events)
  const usageChunks = chunks.filter(chunk => chunk.usage)
  t.equal(usageChunks.length, 1, 'exactly one usage chunk')
  const usageChunk = usageChunks[0]
  t.equal(chunks.at(-1), usageChunk, 'the usage chunk comes right before [DONE]')
  t.same(usageChunk.choices, [])
  t.equal(usageChunk.object, 'text_completion')
  t.equal(usageChunk.id, chunks[0].id)
  t.equal(usageChunk.usage.prompt_tokens, 11)
  t.equal(usageChunk.usage.completion_tokens, 4)
  t.equal(usageChunk.usage.total_tokens, 15)
  t.equal(chunks.flatMap(chunk => chunk.choices).map(choice => choice.text).join(''), 'Hi there friend')
})

t.test('streaming an array prompt with n=2: every choice gets its p*n+i index and its own finish', async t => {
  const { baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/completions`, {
    model: 'qwen-plus',
    prompt: ['a', 'b'],
    n: 2,
    stream: true,
    stream_options: { include_usage: true },
    sim: { usage: { prompt_tokens: 3, completion_tokens: 5 } }
  })
  t.equal(res.status, 200)
  const events = await readEvents(res)
  t.equal(events.at(-1)?.data, '[DONE]')
  const chunks = payloads(events)
  const texts = new Map<number, string>()
  const finishes = new Map<number, string>()
  for (const choice of chunks.flatMap(chunk => chunk.choices)) {
    texts.set(choice.index, (texts.get(choice.index) ?? '') + choice.text)
    if (choice.finish_reason) finishes.set(choice.index, choice.finish_reason)
  }
  t.same([...texts.keys()].sort(), [0, 1, 2, 3])
  t.match(texts.get(0), /said: a$/)
  t.match(texts.get(1), /said: a$/)
  t.match(texts.get(2), /said: b$/)
  t.match(texts.get(3), /said: b$/)
  t.same([...finishes.entries()].sort(), [[0, 'stop'], [1, 'stop'], [2, 'stop'], [3, 'stop']])
  const usageChunks = chunks.filter(chunk => chunk.usage)
  t.equal(usageChunks.length, 1, 'one usage chunk for all prompts')
  t.equal(usageChunks[0].usage.prompt_tokens, 6)
  t.equal(usageChunks[0].usage.completion_tokens, 10)
})

t.test('parameters the chat API cannot honour get a 400 naming them', async t => {
  const app = await build(t)
  const cases: Array<{ name: string, body: Record<string, unknown>, param: string, mention?: RegExp }> = [
    { name: 'echo', body: { echo: true }, param: 'echo', mention: /echo/ },
    { name: 'suffix', body: { suffix: 'x' }, param: 'suffix', mention: /suffix/ },
    { name: 'best_of', body: { best_of: 2 }, param: 'best_of', mention: /best_of/ },
    { name: 'logprobs', body: { logprobs: 1 }, param: 'logprobs', mention: /logprobs/ },
    { name: 'token-array prompt', body: { prompt: [1, 2, 3] }, param: 'prompt', mention: /token/ },
    { name: 'missing prompt', body: { prompt: undefined }, param: 'prompt', mention: /prompt/ }
  ]
  for (const { name, body, param, mention } of cases) {
    const payload = { model: 'qwen-plus', prompt: 'hi', ...body }
    const res = await app.inject({ method: 'POST', url: '/v1/completions', payload })
    t.equal(res.statusCode, 400, `${name}: 400`)
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
    const envelope = res.json()
    t.same(Object.keys(envelope), ['error'], `${name}: only the error envelope`)
    t.same(Object.keys(envelope.error).sort(), ['code', 'message', 'param', 'type'], `${name}: envelope fields`)
    t.equal(envelope.error.type, 'invalid_request_error', `${name}: type`)
    t.equal(envelope.error.param, param, `${name}: param`)
    t.type(envelope.error.message, 'string')
    if (mention) t.match(envelope.error.message, mention, `${name}: the message says which parameter`)
  }
})

t.test('harmless values of the legacy-only parameters are accepted', async t => {
  const { sim, baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/completions`, {
    model: 'qwen-plus', prompt: 'hi', echo: false, suffix: null, best_of: 1, logprobs: null
  })
  t.equal(res.status, 200)
  const [call] = chatRequests(sim.requests)
  for (const field of ['echo', 'suffix', 'best_of', 'logprobs']) t.notOk(field in call.body, `${field} not sent upstream`)
})

t.test('an upstream error keeps its status in the envelope', async t => {
  const { sim, baseURL } = await startStack(t)
  for (const stream of [false, true]) {
    const res = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: 'hi', stream, sim: { error: 'limit_requests' } })
    t.equal(res.status, 429, `stream ${stream}: 429`)
    t.match(res.headers.get('content-type'), /^application\/json/)
    const envelope = await readJson(res)
    t.same(Object.keys(envelope.error).sort(), ['code', 'message', 'param', 'type'])
    t.equal(envelope.error.code, 'limit_requests')
    t.type(envelope.error.message, 'string')
    t.ok(envelope.error.message.length > 0)
  }
  t.equal(chatRequests(sim.requests).length, 2)
})

t.test('a mid-stream upstream error ends the stream with one error event and no [DONE]', async t => {
  const { baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/completions`, {
    model: 'qwen-plus',
    prompt: 'tell me something',
    stream: true,
    sim: { reply: 'alpha beta gamma delta epsilon', midStream: 'inspection', midStreamAfter: 2 }
  })
  t.equal(res.status, 200, 'the stream had begun')
  const events = await readEvents(res)
  t.notOk(events.some(event => event.data === '[DONE]'), 'no [DONE]')
  const chunks = payloads(events)
  const errors = chunks.filter(chunk => chunk.error)
  t.equal(errors.length, 1, 'one error event')
  t.equal(chunks.at(-1), errors[0], 'the error event is the last one')
  t.same(Object.keys(errors[0]), ['error'])
  t.same(Object.keys(errors[0].error).sort(), ['code', 'message', 'param', 'type'])
  t.type(errors[0].error.message, 'string')
  t.equal(errors[0].error.code, 'data_inspection_failed', 'the upstream\'s reason is kept')
  const text = chunks.filter(chunk => !chunk.error).flatMap(chunk => chunk.choices).map(choice => choice.text).join('')
  t.equal(text, 'alpha beta ', 'the text sent before the error went through')
})

t.test('a multi-prompt stream whose second prompt fails closes the first one\'s upstream, and the gauges return to zero', async t => {
  const { sim, baseURL, origin } = await startStack(t)
  // The first prompt streams slowly; the second is refused before its stream begins.
  sim.setOverride(request => request.body.messages[0].content === 'second' ? { error: 'context_overflow', ttfbMs: 100 } : { intervalMs: 200 })
  const res = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: ['first', 'second'], stream: true })
  t.equal(res.status, 400, 'the failure is the answer')
  t.equal(((await readJson(res)) as any).error.code, 'invalid_parameter_error')
  const first = chatRequests(sim.requests).find(request => request.body.messages[0].content === 'first')!
  const closed = first.clientClosedAt ?? (await sim.waitFor('client-closed', 2000)).clientClosedAt
  t.ok(closed, 'the first prompt\'s upstream request was closed by the gateway')
  let inFlight: any
  for (let i = 0; i < 50; i++) {
    inFlight = ((await (await fetch(`${origin}/health`)).json()) as any).in_flight
    if (inFlight.streams === 0) break
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.same(inFlight, { requests: 1, streams: 0 }, 'nothing left in flight')
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  t.match(metrics, /^qwen_gateway_streams_in_flight 0$/m)
})

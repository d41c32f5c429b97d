import t from 'tap'
import { payloads, postJson, readEvents, startStack, user } from '../helper.ts'

t.test('a JSON answer is OpenAI-shaped and keeps the upstream fields', async t => {
  const { baseURL, sim } = await startStack(t)
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hello'), sim: { reasoning: 'thinking...', usage: { prompt_tokens: 21, completion_tokens: 7, cached_tokens: 5 } } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.ok(res.headers.get('x-request-id'))
  const body = await res.json() as any
  t.equal(body.object, 'chat.completion')
  t.match(body.id, /^chatcmpl-/)
  t.equal(body.choices[0].message.role, 'assistant')
  t.equal(body.choices[0].message.content, 'Hello from the Qwen simulator! You said: hello')
  t.equal(body.choices[0].message.refusal, null, 'refusal added (DashScope omits it)')
  t.equal(body.choices[0].message.reasoning_content, 'thinking...', 'reasoning passes through')
  t.equal(body.choices[0].logprobs, null)
  t.equal(body.choices[0].finish_reason, 'stop')
  t.same(body.usage, {
    prompt_tokens: 21,
    completion_tokens: 7,
    total_tokens: 28,
    prompt_tokens_details: { cached_tokens: 5 },
    completion_tokens_details: body.usage.completion_tokens_details,
    cache_read_input_tokens: 5
  }, 'the upstream\'s usage, cached tokens mirrored to the top level where Roo Code reads them')
  t.equal(sim.requests.at(-1)?.headers['x-request-id'], res.headers.get('x-request-id'), 'the request id goes upstream')
})

t.test('the request body reaches the upstream byte for byte, unknown fields and all', async t => {
  const { baseURL, sim } = await startStack(t)
  const raw = '{"model":"qwen-plus",  "messages":[{"role":"user","content":[{"type":"text","text":"caché ✓","cache_control":{"type":"ephemeral"}}]}],"enable_thinking":false,"top_k":5,"enable_search":true,"z_first":1,"a_last":2}'
  const res = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw })
  t.equal(res.status, 200)
  await res.text()
  t.equal(sim.requests.at(-1)?.raw, raw)
})

t.test('a stream without include_usage asks the upstream for usage, changing nothing else', async t => {
  const { baseURL, sim } = await startStack(t)
  const raw = '{"model":"qwen-plus","messages":[{"role":"user","content":"hi"}],"stream":true,"top_k":5}\n'
  const res = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw })
  const events = await readEvents(res)
  t.equal(sim.requests.at(-1)?.raw, '{"model":"qwen-plus","messages":[{"role":"user","content":"hi"}],"stream":true,"top_k":5,"stream_options":{"include_usage":true}}')
  t.notOk(payloads(events).some(chunk => chunk.usage), 'the client did not ask for usage, so it gets none')
  t.equal(events.at(-1)?.data, '[DONE]')
})

t.test('stream_options present without include_usage is completed, not duplicated', async t => {
  const { baseURL, sim } = await startStack(t)
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), stream: true, stream_options: { include_usage: false } })
  await readEvents(res)
  t.same(sim.requests.at(-1)?.body.stream_options, { include_usage: true })
})

t.test('a stream is relayed event by event as the upstream produces it', async t => {
  const { baseURL, sim } = await startStack(t)
  const sentAt = performance.now()
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('one two three four five six'), stream: true, stream_options: { include_usage: true }, sim: { intervalMs: 40 } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.equal(res.headers.get('cache-control'), 'no-cache')
  t.equal(res.headers.get('x-accel-buffering'), 'no')
  const events = await readEvents(res, sentAt)
  const upstream = sim.requests.at(-1)!
  const finishedAfter = upstream.finishedAt! - sentAt
  t.ok(events[1].at < finishedAfter - 100, `the first content event (${events[1].at.toFixed(1)} ms) arrived well before the upstream finished (${finishedAfter.toFixed(1)} ms)`)
  const gaps = events.slice(2, 8).map((event, i) => event.at - events[i + 1].at)
  t.ok(gaps.every(gap => gap > 5), `events are spread out as produced, not batched: gaps ${gaps.map(gap => gap.toFixed(0)).join(', ')} ms`)

  const chunks = payloads(events)
  t.equal(chunks.map(chunk => chunk.choices[0]?.delta?.content ?? '').join(''), 'Hello from the Qwen simulator! You said: one two three four five six')
  t.equal(new Set(chunks.map(chunk => chunk.id)).size, 1, 'one id throughout')
  const last = chunks.at(-1)
  t.same(last.choices, [])
  t.ok(last.usage.prompt_tokens > 0 && last.usage.completion_tokens > 0, 'the upstream\'s real usage')
  t.equal(events.at(-1)?.data, '[DONE]')
})

t.test('XML tool markup and multi-byte text split across upstream writes arrive byte for byte', async t => {
  const { baseURL } = await startStack(t)
  const reply = 'Let me look.\n<read_file>\n<path>src/ünïcode/文件.ts</path>\n</read_file>\n<attempt_completion><result>done & <ok> "quoted"</result></attempt_completion> 🚀'
  for (const framing of [{ splitJson: true }, { batched: true }, { crlf: true }, { comments: true }]) {
    const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { reply, chunkSize: 3, framing } })
    const chunks = payloads(await readEvents(res))
    t.equal(chunks.map(chunk => chunk.choices[0]?.delta?.content ?? '').join(''), reply, JSON.stringify(framing))
  }
})

t.test('JSON answers carry XML markup untouched too', async t => {
  const { baseURL } = await startStack(t)
  const reply = '<write_to_file><path>a.html</path><content><p>&amp; &lt;</p></content></write_to_file>'
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), sim: { reply } })
  t.equal((await res.json() as any).choices[0].message.content, reply)
})

t.test('reasoning streams pass through, and n > 1 keeps every choice', async t => {
  const { baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, n: 2, sim: { reasoning: 'Step one.' } })
  const chunks = payloads(await readEvents(res))
  const reasoning = chunks.map(chunk => chunk.choices.find((c: any) => c.index === 0)?.delta?.reasoning_content ?? '').join('')
  t.equal(reasoning, 'Step one.')
  t.ok(chunks.some(chunk => chunk.choices.some((c: any) => c.index === 1)), 'choice 1 present')
})

t.test('an upstream that forgets [DONE], or sends data after it, still gives a clean stream', async t => {
  const { baseURL } = await startStack(t)
  for (const framing of [{ noDone: true }, { dataAfterDone: true }]) {
    const events = await readEvents(await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { framing } }))
    t.equal(events.at(-1)?.data, '[DONE]', JSON.stringify(framing))
    t.equal(events.filter(event => event.data === '[DONE]').length, 1)
  }
})

t.test('a proxy\'s request id is kept when it is a plain token, replaced otherwise', async t => {
  const { baseURL, sim } = await startStack(t)
  const kept = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x') }, { 'x-request-id': 'nginx-4f2a.9' })
  await kept.text()
  t.equal(kept.headers.get('x-request-id'), 'nginx-4f2a.9')
  t.equal(sim.requests.at(-1)?.headers['x-request-id'], 'nginx-4f2a.9')
  const replaced = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x') }, { 'x-request-id': 'bad id <script>' })
  await replaced.text()
  t.match(replaced.headers.get('x-request-id'), /^[0-9a-f-]{36}$/)
})

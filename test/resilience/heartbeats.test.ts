import t from 'tap'
import OpenAI from 'openai'
import { postJson, readEvents, startStack, user } from '../helper.ts'

const env = { HEARTBEAT_INTERVAL_MS: '200' }

async function rawStream (url: string, body: object) {
  const res = await postJson(url, body)
  return { res, text: await res.text() }
}

t.test('a silent upstream (long thinking) gets keep-alive comments until the first token', async t => {
  const { baseURL, origin } = await startStack(t, { env })
  const { res, text } = await rawStream(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), stream: true, sim: { firstChunkDelayMs: 1000 } })
  t.equal(res.status, 200)
  const beforeData = text.slice(0, text.indexOf('data:'))
  const beats = beforeData.split(': keep-alive\n\n').length - 1
  t.ok(beats >= 3, `${beats} keep-alive comments during one second of silence`)
  t.ok(text.endsWith('data: [DONE]\n\n'))
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  t.match(metrics, /^qwen_gateway_stream_heartbeats_total [1-9]/m)
})

t.test('slow upstream headers: the client gets 200 and keep-alives at once, then the answer', async t => {
  const { baseURL } = await startStack(t, { env })
  const sentAt = performance.now()
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), stream: true, sim: { ttfbMs: 1000 } })
  const headersAfter = performance.now() - sentAt
  t.equal(res.status, 200)
  t.ok(headersAfter < 800, `headers after ${headersAfter.toFixed(0)} ms, before the upstream's (1000 ms)`)
  const events = await readEvents(res)
  t.equal(events.at(-1)?.data, '[DONE]')
})

t.test('an upstream failing after the headers were committed ends the stream with an error event', async t => {
  const { baseURL } = await startStack(t, { env })
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), stream: true, sim: { ttfbMs: 600, error: 'internal_error' } })
  t.equal(res.status, 200, 'committed before the upstream answered')
  const events = await readEvents(res)
  t.equal(events.length, 1)
  t.equal(JSON.parse(events[0].data).error.type, 'InternalError')
})

t.test('an upstream failing quickly is still an HTTP error', async t => {
  const { baseURL } = await startStack(t, { env })
  const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), stream: true, sim: { error: 'context_overflow' } })
  t.equal(res.status, 400)
})

t.test('the official SDK ignores the keep-alive comments', async t => {
  const { baseURL } = await startStack(t, { env })
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
  const stream = await client.chat.completions.create({
    model: 'qwen-plus',
    messages: [{ role: 'user', content: 'thinking hard' }],
    stream: true,
    ...({ sim: { firstChunkDelayMs: 700, intervalMs: 50 } } as object)
  })
  let text = ''
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
  t.equal(text, 'Hello from the Qwen simulator! You said: thinking hard')
})

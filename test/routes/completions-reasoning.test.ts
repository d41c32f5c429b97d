import t from 'tap'
import { payloads, postJson, readEvents, startStack } from '../helper.ts'

// A thinking model behind a vLLM-style server (reasoning under `reasoning`) with n = 2: the chat path rewrites those
// frames, and the legacy path must turn exactly those rewritten chunks into text, choice by choice.
t.test('legacy streams of a thinking model with several choices', async t => {
  const { baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: 'why', n: 2, stream: true, sim: { reasoning: 'Hmm.', reasoningField: 'reasoning' } })
  t.equal(res.status, 200)
  const events = await readEvents(res)
  t.equal(events.at(-1)?.data, '[DONE]')
  const chunks = payloads(events)
  for (const index of [0, 1]) {
    const text = chunks.flatMap(chunk => chunk.choices.filter((choice: any) => choice.index === index)).map((choice: any) => choice.text).join('')
    t.equal(text, 'Hello from the Qwen simulator! You said: why', `choice ${index}: the answer, without the reasoning`)
  }
  t.ok(chunks.every(chunk => chunk.object === 'text_completion'))
})

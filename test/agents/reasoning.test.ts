import t from 'tap'
import OpenAI from 'openai'
import { payloads, postJson, readEvents, startStack, user } from '../helper.ts'

const reply = 'Hello from the Qwen simulator! You said: why'

t.test('reasoning deltas come first, then content; usage reports reasoning tokens', async t => {
  const { baseURL } = await startStack(t)
  for (const field of ['reasoning_content', 'reasoning'] as const) {
    const chunks = payloads(await readEvents(await postJson(`${baseURL}/chat/completions`, {
      model: 'qwen-plus', messages: user('why'), stream: true, stream_options: { include_usage: true }, sim: { reasoning: 'First, think.', reasoningField: field }
    })))
    const order = chunks.flatMap(chunk => chunk.choices.map((choice: any) =>
      choice.delta.reasoning_content ? 'r' : choice.delta.content ? 'c' : '')).join('').replace(/(.)\1+/g, '$1')
    t.equal(order, 'rc', `${field}: reasoning, then content`)
    t.equal(chunks.map(chunk => chunk.choices[0]?.delta?.reasoning_content ?? '').join(''), 'First, think.')
    // An idle `"reasoning": null` beside content may pass untouched (parsing every frame for it would cost more than it says).
    t.notOk(chunks.some(chunk => typeof chunk.choices[0]?.delta?.reasoning === 'string'), `${field}: reasoning text is always under reasoning_content, never both`)
    t.ok(chunks.at(-1).usage.completion_tokens_details.reasoning_tokens > 0)
  }
  const json = (await (await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('why'), sim: { reasoning: 'Hmm.', reasoningField: 'reasoning' } })).json()) as any
  t.equal(json.choices[0].message.reasoning_content, 'Hmm.', 'JSON answers are renamed too')
  t.notOk('reasoning' in json.choices[0].message)
})

t.test('reasoning as <think> tags for clients that read only content', async t => {
  const { baseURL } = await startStack(t)
  const headers = { 'x-reasoning-format': 'think-tags' }
  const streamed = payloads(await readEvents(await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('why'), stream: true, sim: { reasoning: 'Let me see.', chunkSize: 3 } }, headers)))
  const content = streamed.map(chunk => chunk.choices[0]?.delta?.content ?? '').join('')
  t.equal(content, `<think>Let me see.</think>\n\n${reply}`)
  t.notOk(streamed.some(chunk => chunk.choices[0]?.delta?.reasoning_content), 'no separate reasoning field then')

  const json = (await (await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('why'), sim: { reasoning: 'Let me see.' } }, headers)).json()) as any
  t.equal(json.choices[0].message.content, `<think>Let me see.</think>\n\n${reply}`)

  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, defaultHeaders: headers })
  const final = await client.chat.completions.stream({ model: 'qwen-plus', messages: [{ role: 'user', content: 'why' }], ...({ sim: { reasoning: 'Hmm.' } } as object) }).finalChatCompletion()
  t.equal(final.choices[0].message.content, `<think>Hmm.</think>\n\n${reply}`)
})

t.test('reasoning_effort maps to enable_thinking and thinking_budget, never sent beside them', async t => {
  const { baseURL, sim } = await startStack(t)
  const cases: Array<[object, object]> = [
    [{ reasoning_effort: 'none' }, { enable_thinking: false }],
    [{ reasoning_effort: 'minimal' }, { enable_thinking: true, thinking_budget: 256 }],
    [{ reasoning_effort: 'low' }, { enable_thinking: true, thinking_budget: 1024 }],
    [{ reasoning_effort: 'medium' }, { enable_thinking: true, thinking_budget: 8192 }],
    [{ reasoning_effort: 'high' }, { enable_thinking: true }],
    [{ reasoning_effort: 'high', thinking_budget: 500 }, { thinking_budget: 500 }]
  ]
  for (const [sent, expected] of cases) {
    await (await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), ...sent })).text()
    const upstream = sim.requests.at(-1)!.body
    t.notOk('reasoning_effort' in upstream, `${JSON.stringify(sent)}: reasoning_effort not forwarded`)
    t.match(upstream, expected, JSON.stringify(sent))
    if (!('thinking_budget' in expected)) t.notOk('thinking_budget' in upstream)
  }
})

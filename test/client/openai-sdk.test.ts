import t from 'tap'
import OpenAI, {
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError
} from 'openai'
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionStreamParams
} from 'openai/resources/chat/completions'
import type {
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming
} from 'openai/resources/completions'
import { startStack } from '../helper.ts'
import type { Scenario } from '../simulator/types.ts'

// The official OpenAI SDK, as users run it, against the gateway in front of the DashScope simulator.

const MODEL = 'qwen-plus'
// Not the gateway's default MODELS: seeing 'qwen-sim-only' proves the list comes from the upstream.
const SIM_MODELS = ['qwen-plus', 'qwen-flash', 'qwen-sim-only']
const replyTo = (text: string) => 'Hello from the Qwen simulator! You said: ' + text

/** Fields the SDK types do not know: DashScope extras and the simulator's `sim` scenario. */
interface Extras {
  sim?: Scenario
  [field: string]: unknown
}

const messages = (text: string) => [{ role: 'user' as const, content: text }]

const chatParams = (text: string, extras: Extras = {}) =>
  ({ model: MODEL, messages: messages(text), ...extras }) as ChatCompletionCreateParamsNonStreaming

const chatStreamParams = (text: string, extras: Extras = {}) =>
  ({ model: MODEL, messages: messages(text), stream: true, ...extras }) as ChatCompletionCreateParamsStreaming

const legacyParams = (prompt: string | string[], extras: Extras = {}) =>
  ({ model: MODEL, prompt, ...extras }) as CompletionCreateParamsNonStreaming

const legacyStreamParams = (prompt: string, extras: Extras = {}) =>
  ({ model: MODEL, prompt, stream: true, ...extras }) as CompletionCreateParamsStreaming

const includeUsage = { stream_options: { include_usage: true } }

/** The delta as Qwen sends it: `reasoning_content` is an extension the SDK types leave out. */
const reasoningOf = (chunk: ChatCompletionChunk) =>
  (chunk.choices[0]?.delta as { reasoning_content?: string | null } | undefined)?.reasoning_content ?? ''

/** The rejection of a call that must fail. */
async function caught (promise: PromiseLike<unknown>): Promise<APIError> {
  try {
    await promise
  } catch (error) {
    return error as APIError
  }
  throw new Error('expected the call to fail, it succeeded')
}

/** Iterates a stream to its end or first error: what a consumer's for-await loop sees. */
async function drain<T> (stream: AsyncIterable<T>): Promise<{ chunks: T[], error: unknown }> {
  const chunks: T[] = []
  try {
    for await (const chunk of stream) chunks.push(chunk)
  } catch (error) {
    return { chunks, error }
  }
  return { chunks, error: undefined }
}

// One stack for the tests below; a parent test, so it is closed when they end.
t.test('OpenAI SDK against the gateway and the simulator', async t => {
  const { sim, baseURL } = await startStack(t, { sim: { models: SIM_MODELS } })
  const client = new OpenAI({ baseURL, apiKey: 'any-key', maxRetries: 0, timeout: 5000 })
  const lastUpstreamBody = () => sim.requests.at(-1)?.body

  t.test('models.list() returns the upstream models', async t => {
    const ids: string[] = []
    for await (const model of client.models.list()) {
      t.equal(model.object, 'model')
      t.type(model.created, 'number')
      t.type(model.owned_by, 'string')
      ids.push(model.id)
    }
    t.same(ids.toSorted(), SIM_MODELS.toSorted())
  })

  t.test('models.retrieve() finds a model and raises NotFoundError for an unknown one', async t => {
    const model = await client.models.retrieve(MODEL)
    t.equal(model.id, MODEL)
    t.equal(model.object, 'model')

    const error = await caught(client.models.retrieve('nope'))
    t.type(error, NotFoundError)
    t.equal(error.status, 404)
    t.equal(error.code, 'model_not_found')
    t.match(error.message, /nope/)
  })

  t.test('chat.completions.create() returns the reply, real usage and refusal null', async t => {
    const completion = await client.chat.completions.create(
      chatParams('What is Qwen?', { sim: { usage: { prompt_tokens: 12, completion_tokens: 34 } } })
    )
    t.equal(completion.object, 'chat.completion')
    t.match(completion.id, /^chatcmpl-/)
    t.equal(completion.model, MODEL)
    t.ok(Number.isInteger(completion.created), 'created is integer seconds')
    t.equal(completion.choices.length, 1)
    const [choice] = completion.choices
    t.equal(choice.index, 0)
    t.equal(choice.message.role, 'assistant')
    t.equal(choice.message.content, replyTo('What is Qwen?'))
    t.equal(choice.message.refusal, null)
    t.equal(choice.finish_reason, 'stop')
    t.match(completion.usage, { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 })
  })

  t.test('chat.completions.create() reports the upstream usage when not forced', async t => {
    const completion = await client.chat.completions.create(chatParams('count these four words'))
    t.equal(completion.choices[0].message.content, replyTo('count these four words'))
    const usage = completion.usage
    t.ok(usage, 'usage present')
    if (!usage) return
    // The simulator counts prompt words, and one completion token per delta piece.
    t.equal(usage.prompt_tokens, 4)
    t.ok(usage.completion_tokens > 0, 'completion_tokens non-zero')
    t.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens)
  })

  t.test('streamed chat with include_usage: deltas make the reply, one id, usage chunk last', async t => {
    const stream = await client.chat.completions.create(
      chatStreamParams('stream please', { ...includeUsage, sim: { chunkSize: 4, usage: { prompt_tokens: 9, completion_tokens: 21 } } })
    )
    const { chunks, error } = await drain(stream)
    t.equal(error, undefined, 'the stream ends without error')
    t.ok(chunks.length > 3, 'several chunks')
    t.equal(new Set(chunks.map(chunk => chunk.id)).size, 1, 'every chunk has the same id')
    t.ok(chunks.every(chunk => chunk.object === 'chat.completion.chunk'))
    t.equal(chunks[0].choices[0]?.delta.role, 'assistant', 'first delta carries the role')

    const last = chunks.at(-1) as ChatCompletionChunk
    t.same(last.choices, [], 'the usage chunk has no choices')
    t.match(last.usage, { prompt_tokens: 9, completion_tokens: 21, total_tokens: 30 })
    const earlier = chunks.slice(0, -1)
    t.ok(earlier.every(chunk => chunk.usage == null), 'only the last chunk carries usage')
    t.equal(earlier.map(chunk => chunk.choices[0]?.delta.content ?? '').join(''), replyTo('stream please'))
    t.equal(earlier.at(-1)?.choices[0]?.finish_reason, 'stop')
  })

  t.test('streamed chat without include_usage: no chunk carries usage', async t => {
    const stream = await client.chat.completions.create(chatStreamParams('no usage', { sim: { chunkSize: 5 } }))
    const { chunks, error } = await drain(stream)
    t.equal(error, undefined, 'the stream ends without error')
    t.equal(chunks.map(chunk => chunk.choices[0]?.delta.content ?? '').join(''), replyTo('no usage'))
    t.ok(chunks.every(chunk => chunk.usage == null), 'no usage object in any chunk')
    t.ok(chunks.every(chunk => chunk.choices.length === 1), 'no empty-choices usage chunk')
    t.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop')
    // Without the upstream usage chunk, the test above would pass trivially: the gateway asks for it and drops it.
    t.equal(lastUpstreamBody()?.stream_options?.include_usage, true, 'the gateway asked the upstream for usage')
  })

  t.test('chat.completions.stream() helper: finalChatCompletion() has the reply and usage', async t => {
    const runner = client.chat.completions.stream(
      { ...chatParams('helper test'), ...includeUsage, sim: { chunkSize: 3, usage: { prompt_tokens: 5, completion_tokens: 8 } } } as ChatCompletionStreamParams
    )
    let deltas = ''
    runner.on('content', delta => { deltas += delta })
    const final = await runner.finalChatCompletion()
    t.equal(deltas, replyTo('helper test'))
    t.equal(final.choices[0].message.content, replyTo('helper test'))
    t.equal(final.choices[0].message.role, 'assistant')
    t.equal(final.choices[0].finish_reason, 'stop')
    t.match(final.id, /^chatcmpl-/)
    // The helper merges usage only from a chunk that repeats the stream's id (wire contract 2.5).
    t.match(final.usage, { prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 })
  })

  t.test('chat.completions.stream() helper: reasoning_content arrives before the answer', async t => {
    const runner = client.chat.completions.stream(
      { ...chatParams('think first'), sim: { reasoning: 'Let me think', chunkSize: 4 } } as ChatCompletionStreamParams
    )
    const chunks: ChatCompletionChunk[] = []
    runner.on('chunk', chunk => { chunks.push(chunk) })
    const final = await runner.finalChatCompletion()
    t.equal(chunks.map(reasoningOf).join(''), 'Let me think', 'delta.reasoning_content carries the reasoning')
    const firstContent = chunks.findIndex(chunk => (chunk.choices[0]?.delta.content ?? '') !== '')
    const lastReasoning = chunks.findLastIndex(chunk => reasoningOf(chunk) !== '')
    t.ok(lastReasoning >= 0 && lastReasoning < firstContent, 'reasoning comes before the content')
    t.equal(final.choices[0].message.content, replyTo('think first'))
    t.equal(final.choices[0].finish_reason, 'stop')
  })

  t.test('legacy completions.create() returns a text_completion', async t => {
    const completion = await client.completions.create(legacyParams('Say hi'))
    t.equal(completion.object, 'text_completion')
    t.match(completion.id, /^cmpl-/)
    t.equal(completion.model, MODEL)
    t.equal(completion.choices.length, 1)
    const [choice] = completion.choices
    t.equal(choice.index, 0)
    t.equal(choice.text, replyTo('Say hi'))
    t.equal(choice.logprobs, null)
    t.equal(choice.finish_reason, 'stop')
    const usage = completion.usage
    t.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0, 'real usage')
    t.equal(usage?.total_tokens, (usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0))
  })

  t.test('legacy streamed completion with include_usage: texts make the reply, usage chunk last', async t => {
    const stream = await client.completions.create(
      legacyStreamParams('Say hi', { ...includeUsage, sim: { chunkSize: 4, usage: { prompt_tokens: 2, completion_tokens: 11 } } })
    )
    const { chunks, error } = await drain(stream)
    t.equal(error, undefined, 'the stream ends without error')
    t.ok(chunks.length > 2, 'several chunks')
    t.ok(chunks.every(chunk => chunk.object === 'text_completion'))
    t.equal(new Set(chunks.map(chunk => chunk.id)).size, 1, 'every chunk has the same id')
    t.match(chunks[0].id, /^cmpl-/)
    t.equal(chunks.map(chunk => chunk.choices[0]?.text ?? '').join(''), replyTo('Say hi'))
    const last = chunks.at(-1)
    t.match(last?.usage, { prompt_tokens: 2, completion_tokens: 11, total_tokens: 13 }, 'usage in the last chunk')
    t.ok(chunks.slice(0, -1).every(chunk => chunk.usage == null), 'only the last chunk carries usage')
  })

  t.test('legacy completion with an array prompt answers each prompt', async t => {
    const completion = await client.completions.create(legacyParams(['a', 'b']))
    const choices = completion.choices.toSorted((x, y) => x.index - y.index)
    t.same(choices.map(choice => choice.index), [0, 1])
    t.equal(choices[0].text, replyTo('a'))
    t.equal(choices[1].text, replyTo('b'))
    t.ok(choices.every(choice => choice.logprobs === null && choice.finish_reason === 'stop'))
  })

  t.test('schema violations raise BadRequestError naming the field', async t => {
    const temperature = await caught(client.chat.completions.create(chatParams('hi', { temperature: 5 })))
    t.type(temperature, BadRequestError)
    t.equal(temperature.status, 400)
    t.equal(temperature.param, 'temperature')

    const role = await caught(client.chat.completions.create(
      { model: MODEL, messages: [{ role: 'robot', content: 'beep' }] } as unknown as ChatCompletionCreateParamsNonStreaming
    ))
    t.type(role, BadRequestError)
    t.equal(role.status, 400)
    t.equal(role.param, 'messages[0].role')

    const echo = await caught(client.completions.create(legacyParams('hi', { echo: true })))
    t.type(echo, BadRequestError)
    t.equal(echo.status, 400)
    t.equal(echo.param, 'echo')
  })

  t.test('upstream errors keep their status and SDK error class', async t => {
    const before = sim.requests.length
    const limited = await caught(client.chat.completions.create(chatParams('hi', { sim: { error: 'limit_requests' } })))
    t.type(limited, RateLimitError)
    t.equal(limited.status, 429)
    t.equal(limited.code, 'limit_requests')

    const auth = await caught(client.chat.completions.create(chatParams('hi', { sim: { error: 'invalid_api_key_unwrapped' } })))
    t.type(auth, AuthenticationError)
    t.equal(auth.status, 401)
    t.ok(auth.error, 'the body has the OpenAI error envelope')
    // Not the client's own key: the message says the upstream refused the gateway's credentials.
    t.match(auth.message, /upstream/i)
    t.match(auth.message, /credentials|DASHSCOPE_API_KEY/)

    const internal = await caught(client.chat.completions.create(chatParams('hi', { sim: { error: 'internal_error' } })))
    t.type(internal, InternalServerError)
    t.equal(internal.status, 500)

    const badGateway = await caught(client.chat.completions.create(chatParams('hi', { sim: { error: 'bad_gateway_html' } })))
    t.type(badGateway, InternalServerError)
    t.equal(badGateway.status, 502)
    t.ok(badGateway.error, 'the body has the OpenAI error envelope')
    t.notMatch(badGateway.message, /<html|<\/|<h1|nginx/i, 'no HTML in the message')

    // With maxRetries 0 each call reached the upstream once (unless the gateway itself retried on another key).
    t.ok(sim.requests.length - before >= 4, 'every error came from the upstream')
  })

  t.test('mid-stream errors: chunks, then the iteration throws APIError', async t => {
    const cases: Array<{ midStream: NonNullable<Scenario['midStream']>, code?: string }> = [
      { midStream: 'inspection', code: 'data_inspection_failed' },
      { midStream: 'event_error' },
      { midStream: 'reset' }
    ]
    for (const { midStream, code } of cases) {
      await t.test(midStream, async t => {
        const stream = await client.chat.completions.create(
          chatStreamParams('break please', { ...includeUsage, sim: { midStream, midStreamAfter: 2, chunkSize: 4 } })
        )
        const { chunks, error } = await drain(stream)
        t.ok(chunks.length > 0, 'some chunks arrived first')
        const text = chunks.map(chunk => chunk.choices[0]?.delta.content ?? '').join('')
        t.ok(text.length > 0 && replyTo('break please').startsWith(text), 'a prefix of the reply arrived')
        t.type(error, APIError, 'the stream throws an APIError, not a transport error or a normal end')
        if (!(error instanceof APIError)) return
        t.ok(error.message.length > 0, 'the error has a message')
        if (code) t.equal(error.code, code)
        t.notOk(chunks.some(chunk => chunk.usage), 'no usage chunk after a failure')
      })
    }
  })

  t.test('unknown top-level fields reach the upstream unchanged', async t => {
    const completion = await client.chat.completions.create(chatParams('extras', { enable_thinking: false, top_k: 5 }))
    t.equal(completion.choices[0].message.content, replyTo('extras'))
    const body = lastUpstreamBody()
    t.equal(body?.enable_thinking, false)
    t.equal(body?.top_k, 5)

    const stream = await client.chat.completions.create(chatStreamParams('extras', { enable_thinking: false, top_k: 5 }))
    await drain(stream)
    t.equal(lastUpstreamBody()?.enable_thinking, false, 'also when streaming')
    t.equal(lastUpstreamBody()?.top_k, 5, 'also when streaming')
  })
})

t.test('GATEWAY_API_KEYS: the right key works, a wrong key is AuthenticationError', async t => {
  const stack = await startStack(t, { env: { GATEWAY_API_KEYS: 'client-key-1' } })
  const good = new OpenAI({ baseURL: stack.baseURL, apiKey: 'client-key-1', maxRetries: 0, timeout: 5000 })
  const completion = await good.chat.completions.create(chatParams('authorized'))
  t.equal(completion.choices[0].message.content, replyTo('authorized'))
  const ids: string[] = []
  for await (const model of good.models.list()) ids.push(model.id)
  t.ok(ids.includes(MODEL))

  const before = stack.sim.requests.length
  const bad = new OpenAI({ baseURL: stack.baseURL, apiKey: 'wrong-key', maxRetries: 0, timeout: 5000 })
  const chatError = await caught(bad.chat.completions.create(chatParams('not authorized')))
  t.type(chatError, AuthenticationError)
  t.equal(chatError.status, 401)
  t.equal(chatError.code, 'invalid_api_key')

  const listError = await caught(bad.models.list())
  t.type(listError, AuthenticationError)
  t.equal(listError.code, 'invalid_api_key')
  t.equal(stack.sim.requests.length, before, 'a refused client never reaches the upstream')
})

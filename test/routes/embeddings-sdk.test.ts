import t from 'tap'
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError } from 'openai'
import type { RecordedRequest } from '../simulator/index.ts'
import { simTokens, simVector } from '../simulator/embeddings.ts'
import { startStack } from '../helper.ts'

// The official openai package's client.embeddings.create against the gateway in front of the DashScope simulator.

const MODEL = 'text-embedding-v4'
const texts = (count: number) => Array.from({ length: count }, (_, i) => `sdk input ${i}`)
const embeddingCalls = (requests: RecordedRequest[]) => requests.filter(request => request.path.split('?')[0] === '/v1/embeddings')

t.test('default encoding: the SDK asks for base64 and gets the same floats back, 23 inputs in three calls', async t => {
  const { sim, baseURL } = await startStack(t)
  const sent: any[] = []
  const client = new OpenAI({
    baseURL,
    apiKey: 'unused',
    maxRetries: 0,
    fetch: async (url, init) => {
      sent.push(JSON.parse(String(init?.body)))
      return fetch(url, init)
    }
  })
  const inputs = texts(23)
  const result = await client.embeddings.create({ model: MODEL, input: inputs, dimensions: 512 })
  t.equal(result.object, 'list')
  t.equal(result.model, MODEL)
  t.equal(result.data.length, 23)
  result.data.forEach((item, i) => {
    t.equal(item.index, i)
    t.ok(Array.isArray(item.embedding), 'decoded by the SDK')
    t.same(item.embedding, simVector(inputs[i], 512).map(Math.fround), `vector ${i}, float32 precision`)
  })
  const tokens = inputs.reduce((sum, text) => sum + simTokens(text), 0)
  t.same(result.usage, { prompt_tokens: tokens, total_tokens: tokens })
  t.equal(sent[0].encoding_format, 'base64', 'the SDK asked for base64')

  const calls = embeddingCalls(sim.requests)
  t.equal(calls.length, 3)
  t.ok(calls.every(call => call.body.encoding_format === 'float'), 'floats upstream although the SDK asked for base64')
})

t.test('encoding_format float: the floats as the upstream sent them', async t => {
  const { sim, baseURL } = await startStack(t)
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
  const result = await client.embeddings.create({ model: MODEL, input: 'one string', encoding_format: 'float' })
  t.equal(result.data.length, 1)
  t.same(result.data[0].embedding, simVector('one string', 1024))
  t.same(embeddingCalls(sim.requests)[0].body.input, 'one string')
})

t.test('errors arrive as the SDK\'s typed errors', async t => {
  const { sim, baseURL } = await startStack(t)
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 })
  const dims = await client.embeddings.create({ model: MODEL, input: 'x', dimensions: 300 }).catch((error: unknown) => error)
  t.ok(dims instanceof BadRequestError, 'invalid dimensions: BadRequestError')
  t.equal((dims as BadRequestError).param, 'dimensions')
  t.equal(embeddingCalls(sim.requests).length, 0)

  const unknown = await client.embeddings.create({ model: 'qwen-embed-nope', input: 'x' }).catch((error: unknown) => error)
  t.ok(unknown instanceof NotFoundError, 'an unknown model: NotFoundError')
  t.equal((unknown as NotFoundError).code, 'model_not_found')

  const keyed = await startStack(t, { sim: { apiKeys: ['sk-right'] }, env: { DASHSCOPE_API_KEY: 'sk-wrong' } })
  const refused = await new OpenAI({ baseURL: keyed.baseURL, apiKey: 'unused', maxRetries: 0 })
    .embeddings.create({ model: MODEL, input: texts(15) }).catch((error: unknown) => error)
  t.ok(refused instanceof AuthenticationError, 'the upstream refusing the gateway\'s key: AuthenticationError')
  t.match((refused as AuthenticationError).message, /rejected the gateway's credentials/)
})

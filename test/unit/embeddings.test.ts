import t from 'tap'
import {
  batches, batchSizeFor, checkDimensions, decodeFloats, embeddingsCost, embeddingsJson, encodeFloats, readBatch, runBatches,
  upstreamPayload
} from '../../src/adapters/embeddings.ts'
import { GatewayError } from '../../src/errors.ts'
import { buildTopology } from '../../src/topology.ts'
import type { EmbeddingRequest } from '../../src/schemas/embeddings.ts'

const defaults = { baseUrl: 'http://127.0.0.1:1/v1', keys: [], clientKeys: [], requestsPerMinute: 0, tokensPerMinute: 0, aliases: [] }

t.test('batches: consecutive slices, the last one shorter', async t => {
  const inputs = Array.from({ length: 25 }, (_, i) => i)
  t.same(batches(inputs, 10).map(batch => batch.length), [10, 10, 5])
  t.same(batches(inputs, 10).flat(), inputs)
  t.same(batches(['a'], 10), [['a']])
  t.same(batches(inputs, 25).length, 1)
})

t.test('batch size: the primary target\'s upstream decides, else EMBEDDINGS_BATCH_SIZE', async t => {
  const topology = buildTopology({
    upstreams: [{ name: 'dashscope', base_url: 'http://a/v1' }, { name: 'vllm', base_url: 'http://b/v1', embeddings_batch_size: 256 }],
    models: [
      { id: 'local-embed', targets: [{ upstream: 'vllm', model: 'Qwen/Qwen3-Embedding-8B' }, { upstream: 'dashscope', model: 'text-embedding-v4' }] },
      { id: 'text-embedding-v4', targets: [{ upstream: 'dashscope' }, { upstream: 'vllm' }] }
    ]
  }, defaults, {})
  t.equal(batchSizeFor(topology, topology.routes.get('local-embed')!, 10), 256)
  t.equal(batchSizeFor(topology, topology.routes.get('text-embedding-v4')!, 10), 10)
  t.equal(batchSizeFor(topology, [{ upstream: 'dashscope', model: 'x' }], 7), 7)
})

t.test('dimensions: DashScope v3/v4 sizes only, anything for other models', async t => {
  t.equal(checkDimensions(['text-embedding-v4'], undefined), null)
  t.equal(checkDimensions(['text-embedding-v4'], null), null)
  for (const size of [2048, 1536, 1024, 768, 512, 256, 128, 64]) t.equal(checkDimensions(['text-embedding-v4'], size), null, `v4 ${size}`)
  for (const size of [1024, 768, 512, 256, 128, 64]) t.equal(checkDimensions(['text-embedding-v3'], size), null, `v3 ${size}`)
  const refused = checkDimensions(['text-embedding-v4'], 100)
  t.ok(refused instanceof GatewayError)
  t.equal(refused?.statusCode, 400)
  t.equal(refused?.param, 'dimensions')
  t.match(refused?.message, /text-embedding-v4 supports 2048, 1536, 1024, 768, 512, 256, 128, 64; got 100/)
  t.equal(checkDimensions(['text-embedding-v3'], 2048)?.statusCode, 400, 'v3 stops at 1024')
  t.equal(checkDimensions(['Qwen/Qwen3-Embedding-8B'], 100), null, 'self-hosted models take any size')
  t.equal(checkDimensions(['Qwen/Qwen3-Embedding-8B', 'text-embedding-v4'], 100)?.statusCode, 400, 'a fallback that would refuse counts too')
})

t.test('upstream payload: the client\'s fields, the target model, the batch, always floats, no nulls', async t => {
  const body = { model: 'alias', input: ['a', 'b', 'c'], encoding_format: 'base64', dimensions: null, user: null, text_type: 'query' } as unknown as EmbeddingRequest
  t.same(JSON.parse(upstreamPayload(body, 'text-embedding-v4', ['b'])), { model: 'text-embedding-v4', input: ['b'], encoding_format: 'float', text_type: 'query' })
  const full = { model: 'm', input: 'x', dimensions: 64, user: 'u' } as EmbeddingRequest
  t.same(JSON.parse(upstreamPayload(full, 'm', 'x')), { model: 'm', input: 'x', dimensions: 64, user: 'u', encoding_format: 'float' })
})

t.test('cost: one request, the inputs at four bytes a token, no output', async t => {
  t.same(embeddingsCost({ input: 'abcdefgh' }), { requests: 1, tokens: 2 })
  t.same(embeddingsCost({ input: ['abc', 'é', 'abcde'] }), { requests: 1, tokens: 3 })
})

t.test('runBatches: results in order, concurrency bounded', async t => {
  let running = 0
  let most = 0
  const results = await runBatches(9, 3, new AbortController(), async i => {
    running++
    most = Math.max(most, running)
    await new Promise(resolve => setTimeout(resolve, (9 - i) * 2))
    running--
    return i * 10
  })
  t.same(results, [0, 10, 20, 30, 40, 50, 60, 70, 80])
  t.equal(most, 3)
  t.same(await runBatches(1, 4, new AbortController(), async () => 'one'), ['one'])
})

t.test('runBatches: the first failure aborts the rest and is what is thrown', async t => {
  const abort = new AbortController()
  const started: number[] = []
  const failure = new Error('batch 1 failed')
  const run = runBatches(10, 2, abort, async i => {
    started.push(i)
    if (i === 1) throw failure
    // The others wait for the shared signal, as an upstream call does, and fail with an abort error.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, 5000)
      abort.signal.addEventListener('abort', () => { clearTimeout(timer); reject(new DOMException('aborted', 'AbortError')) })
    })
    return i
  })
  await t.rejects(run, failure)
  t.ok(abort.signal.aborted)
  t.same(started, [0, 1], 'no batch started after the failure')
})

t.test('runBatches: a client that left between batches ends the run with an abort', async t => {
  const abort = new AbortController()
  const run = runBatches(3, 1, abort, async i => {
    if (i === 0) abort.abort()
    return i
  })
  await t.rejects(run, { name: 'AbortError' })
})

t.test('readBatch: vectors by index, usage, base64 decoded; anything unreadable is a 502', async t => {
  const batch = readBatch({
    data: [{ index: 1, embedding: [3, 4] }, { index: 0, embedding: [1, 2] }],
    usage: { prompt_tokens: 5, total_tokens: 5 }
  }, 2, 'm')
  t.same(batch, { vectors: [[1, 2], [3, 4]], promptTokens: 5, totalTokens: 5 })
  t.same(readBatch({ data: [{ embedding: [1] }, { embedding: [2] }] }, 2, 'm'), { vectors: [[1], [2]], promptTokens: 0, totalTokens: 0 }, 'no index, no usage')
  t.same(readBatch({ data: [{ index: 0, embedding: encodeFloats([0.5, -2]) }], usage: { prompt_tokens: 3 } }, 1, 'm'),
    { vectors: [[0.5, -2]], promptTokens: 3, totalTokens: 3 })

  const bad: Array<[unknown, RegExp]> = [
    [null, /without a "data" array/],
    [{ data: {} }, /without a "data" array/],
    [{ data: [{ embedding: [1] }] }, /1 embeddings for 2 inputs/],
    [{ data: [{ index: 0, embedding: [1] }, { index: 0, embedding: [2] }] }, /data\[1\]\.index is 0/],
    [{ data: [{ index: 0, embedding: [1] }, { index: 5, embedding: [2] }] }, /data\[1\]\.index is 5/],
    [{ data: [{ embedding: [1] }, 'x'] }, /data\[1\] is not an object/],
    [{ data: [{ embedding: [1] }, { embedding: ['1'] }] }, /data\[1\]\.embedding is not an array of numbers/],
    [{ data: [{ embedding: [1] }, { embedding: null }] }, /data\[1\]\.embedding is not an array of numbers/],
    [{ data: [{ embedding: [1] }, { embedding: 'abc' }] }, /data\[1\]\.embedding is not an array of numbers/]
  ]
  for (const [body, message] of bad) {
    t.throws(() => readBatch(body, 2, 'text-embedding-v4'), { statusCode: 502, code: 'upstream_protocol_error', message }, JSON.stringify(body))
  }
  t.throws(() => readBatch(JSON.parse('{"data":[{"embedding":[1e999]}]}'), 1, 'm'), { statusCode: 502, message: /data\[0\]\.embedding is not an array of numbers/ }, 'an infinite value')
})

t.test('base64: little-endian float32 bytes, as openai-node decodes them', async t => {
  const values = [0, 1, -1, 0.1, 123.456, -1e-20, 3.4e38]
  const text = encodeFloats(values)
  const bytes = Buffer.from(text, 'base64')
  t.equal(bytes.length, values.length * 4)
  t.same(Array.from({ length: values.length }, (_, i) => bytes.readFloatLE(i * 4)), values.map(Math.fround))
  t.same(decodeFloats(text), values.map(Math.fround))
  t.equal(decodeFloats('AAA='), null, 'not a whole number of floats')
})

t.test('the answer: OpenAI\'s list with global indexes and summed usage, equal to JSON.stringify of the same', async t => {
  const parts = [
    { vectors: [[0.1, -0.2], [1e-7, 5]], promptTokens: 3, totalTokens: 3 },
    { vectors: [[-0, 123456789.125]], promptTokens: 2, totalTokens: 4 }
  ]
  const text = embeddingsJson('my "model"', parts, false)
  t.equal(text, JSON.stringify({
    object: 'list',
    data: [[0.1, -0.2], [1e-7, 5], [-0, 123456789.125]].map((embedding, index) => ({ object: 'embedding', index, embedding })),
    model: 'my "model"',
    usage: { prompt_tokens: 5, total_tokens: 7 }
  }))
  const base64 = JSON.parse(embeddingsJson('m', parts, true))
  t.same(base64.data.map((item: any) => item.index), [0, 1, 2])
  t.same(base64.data.map((item: any) => decodeFloats(item.embedding)), [[0.1, -0.2], [1e-7, 5], [-0, 123456789.125]].map(vector => vector.map(Math.fround)))
})

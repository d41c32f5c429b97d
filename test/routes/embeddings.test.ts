import t from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startSimulator, type RecordedRequest } from '../simulator/index.ts'
import { simTokens, simVector } from '../simulator/embeddings.ts'
import { postJson, startStack } from '../helper.ts'

// POST /v1/embeddings over HTTP, in front of the DashScope simulator (wire-apis.md §3, wire-contract.md §1.11).

const MODEL = 'text-embedding-v4'
const texts = (count: number, prefix = 'text') => Array.from({ length: count }, (_, i) => `${prefix} ${i}`)
const readJson = async (res: Response): Promise<any> => res.json()
const embeddingCalls = (requests: RecordedRequest[]) =>
  requests.filter(request => request.method === 'POST' && request.path.split('?')[0] === '/v1/embeddings')
const decode = (text: string) => {
  const bytes = Buffer.from(text, 'base64')
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))
}

t.test('25 inputs: three upstream calls of 10, 10 and 5, joined in order with usage summed', async t => {
  const { sim, baseURL } = await startStack(t)
  const inputs = texts(25)
  const res = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: inputs, dimensions: 64, encoding_format: 'float' })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const answer = await readJson(res)
  t.same(Object.keys(answer), ['object', 'data', 'model', 'usage'])
  t.equal(answer.object, 'list')
  t.equal(answer.model, MODEL)
  t.equal(answer.data.length, 25)
  answer.data.forEach((item: any, i: number) => {
    t.same(Object.keys(item), ['object', 'index', 'embedding'], `item ${i}`)
    t.equal(item.object, 'embedding')
    t.equal(item.index, i)
    t.same(item.embedding, simVector(inputs[i], 64), `vector ${i} is the one for "${inputs[i]}"`)
  })
  const tokens = inputs.reduce((sum, text) => sum + simTokens(text), 0)
  t.same(answer.usage, { prompt_tokens: tokens, total_tokens: tokens })

  const calls = embeddingCalls(sim.requests)
  t.equal(calls.length, 3, 'three upstream calls')
  const sent = calls.map(call => call.body.input).sort((a, b) => Number(a[0].split(' ')[1]) - Number(b[0].split(' ')[1]))
  t.same(sent, [inputs.slice(0, 10), inputs.slice(10, 20), inputs.slice(20)])
  for (const call of calls) {
    t.equal(call.body.model, MODEL)
    t.equal(call.body.encoding_format, 'float', 'floats asked for upstream')
    t.equal(call.body.dimensions, 64, 'dimensions passed on')
  }
})

t.test('one string: one call with the string as sent; fields the gateway does not know pass on', async t => {
  const { sim, baseURL } = await startStack(t)
  const res = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: 'hello', user: 'u-1', text_type: 'query' })
  t.equal(res.status, 200)
  const answer = await readJson(res)
  t.equal(answer.data.length, 1)
  t.same(answer.data[0].embedding, simVector('hello', 1024), 'floats when encoding_format is not given')
  const [call] = embeddingCalls(sim.requests)
  t.same(call.body, { model: MODEL, input: 'hello', user: 'u-1', text_type: 'query', encoding_format: 'float' })
})

t.test('base64: little-endian float32 of the same vectors', async t => {
  const { sim, baseURL } = await startStack(t)
  const input = texts(12)
  const floats = await readJson(await postJson(`${baseURL}/embeddings`, { model: MODEL, input, dimensions: 256 }))
  const res = await postJson(`${baseURL}/embeddings`, { model: MODEL, input, dimensions: 256, encoding_format: 'base64' })
  t.equal(res.status, 200)
  const encoded = await readJson(res)
  t.same(encoded.usage, floats.usage)
  t.same(encoded.data.map((item: any) => item.index), floats.data.map((item: any) => item.index))
  encoded.data.forEach((item: any, i: number) => {
    t.type(item.embedding, 'string')
    t.same(decode(item.embedding), floats.data[i].embedding.map(Math.fround), `vector ${i}`)
  })
  t.ok(embeddingCalls(sim.requests).every(call => call.body.encoding_format === 'float'), 'never base64 upstream')
})

t.test('invalid requests are 400s in OpenAI\'s envelope, and nothing goes upstream', async t => {
  const { sim, baseURL } = await startStack(t)
  const cases: Array<[string, object, string]> = [
    ['token ids', { model: MODEL, input: [1, 2, 3] }, 'input'],
    ['arrays of token ids', { model: MODEL, input: [[1, 2], [3]] }, 'input'],
    ['an empty string', { model: MODEL, input: '' }, 'input'],
    ['an empty array', { model: MODEL, input: [] }, 'input'],
    ['an empty string in the array', { model: MODEL, input: ['a', ''] }, 'input'],
    ['no input', { model: MODEL }, 'input'],
    ['no model', { input: 'x' }, 'model'],
    ['an unknown encoding', { model: MODEL, input: 'x', encoding_format: 'hex' }, 'encoding_format'],
    ['dimensions not an integer', { model: MODEL, input: 'x', dimensions: 'big' }, 'dimensions'],
    ['v4 dimensions outside its sizes', { model: MODEL, input: 'x', dimensions: 100 }, 'dimensions'],
    ['v4 dimensions above its sizes', { model: MODEL, input: texts(30), dimensions: 4096 }, 'dimensions'],
    ['v3 dimensions above its sizes', { model: 'text-embedding-v3', input: 'x', dimensions: 2048 }, 'dimensions']
  ]
  for (const [label, body, param] of cases) {
    const res = await postJson(`${baseURL}/embeddings`, body)
    t.equal(res.status, 400, label)
    t.equal(res.headers.get('x-gateway-error-source'), 'gateway', label)
    const { error } = await readJson(res)
    t.same(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], label)
    t.equal(error.type, 'invalid_request_error', label)
    t.equal(error.param, param, label)
  }
  const tokenIds = await readJson(await postJson(`${baseURL}/embeddings`, { model: MODEL, input: [1, 2, 3] }))
  t.match(tokenIds.error.message, /token-id arrays are not supported/)
  const dims = await readJson(await postJson(`${baseURL}/embeddings`, { model: MODEL, input: 'x', dimensions: 100 }))
  t.match(dims.error.message, /2048, 1536, 1024, 768, 512, 256, 128, 64/)
  t.equal(embeddingCalls(sim.requests).length, 0, 'no upstream call')

  const ok = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: 'x', dimensions: 2048, encoding_format: null, user: null })
  t.equal(ok.status, 200, 'nulls are accepted as absent')
  t.equal((await readJson(ok)).data[0].embedding.length, 2048)
})

t.test('EMBEDDINGS_BATCH_SIZE and EMBEDDINGS_CONCURRENCY: batches of the size, at most that many at once', async t => {
  const { sim, baseURL } = await startStack(t, { env: { EMBEDDINGS_BATCH_SIZE: '4', EMBEDDINGS_CONCURRENCY: '2' } })
  const inputs = texts(22)
  const res = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: inputs, dimensions: 64, sim: { ttfbMs: 40 } })
  t.equal(res.status, 200)
  const answer = await readJson(res)
  t.same(answer.data.map((item: any) => item.embedding), inputs.map(text => simVector(text, 64)), 'every vector in its place')
  const calls = embeddingCalls(sim.requests)
  t.same(calls.map(call => call.body.input.length).sort(), [2, 4, 4, 4, 4, 4])
  let most = 0
  for (const call of calls) {
    const overlapping = calls.filter(other => other.startedAt <= call.startedAt && other.finishedAt! > call.startedAt).length
    most = Math.max(most, overlapping)
  }
  t.equal(most, 2, 'two batches in flight at most')
})

t.test('a batch limit per upstream in GATEWAY_CONFIG, and aliases answered under the requested name', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'embeddings-'))
  const file = join(dir, 'gateway.yaml')
  const sim = await startSimulator()
  t.after(() => sim.close())
  writeFileSync(file, `
upstreams:
  - { name: local, base_url: "${sim.url}", embeddings_batch_size: 3 }
models:
  - { id: my-embed, targets: [{ upstream: local, model: text-embedding-v4 }] }
`)
  const { baseURL } = await startStack(t, { env: { GATEWAY_CONFIG: file } })
  const inputs = texts(7)
  const refused = await postJson(`${baseURL}/embeddings`, { model: 'my-embed', input: inputs, dimensions: 100 })
  t.equal(refused.status, 400, 'the target model\'s dimensions are checked')
  const res = await postJson(`${baseURL}/embeddings`, { model: 'my-embed', input: inputs, dimensions: 128 })
  t.equal(res.status, 200)
  const answer = await readJson(res)
  t.equal(answer.model, 'my-embed', 'the name the client asked for')
  t.same(answer.data.map((item: any) => item.embedding), inputs.map(text => simVector(text, 128)))
  const calls = embeddingCalls(sim.requests)
  t.same(calls.map(call => call.body.input.length).sort(), [1, 3, 3])
  t.ok(calls.every(call => call.body.model === 'text-embedding-v4'), 'the upstream\'s id upstream')
})

t.test('a failing batch: one clean error, and the other batches are cut short', async t => {
  const { sim, baseURL } = await startStack(t)
  sim.setOverride(request => request.body?.input?.includes?.('poison')
    ? { error: 'data_inspection_failed' }
    : { ttfbMs: 5000 })
  const inputs = texts(30)
  inputs[15] = 'poison'
  const started = performance.now()
  const res = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: inputs })
  t.ok(performance.now() - started < 3000, 'no wait for the slow batches')
  t.equal(res.status, 400)
  t.equal(res.headers.get('x-gateway-error-source'), 'upstream')
  const body = await readJson(res)
  t.same(Object.keys(body), ['error'], 'one error, no partial data')
  t.equal(body.error.code, 'data_inspection_failed')
  const closed = await Promise.all([sim.waitFor('client-closed', 2000), sim.waitFor('client-closed', 2000)])
  t.equal(closed.length, 2, 'the two slow batches were aborted upstream')
  t.equal(embeddingCalls(sim.requests).length, 3)
})

t.test('the client leaving aborts the upstream calls', async t => {
  const { sim, baseURL } = await startStack(t)
  const abort = new AbortController()
  const pending = fetch(`${baseURL}/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, input: texts(20), sim: { stall: 'headers' } }),
    signal: abort.signal
  }).catch((error: unknown) => error)
  await sim.waitFor('request')
  await sim.waitFor('request')
  abort.abort()
  await pending
  await sim.waitFor('client-closed', 2000)
  await sim.waitFor('client-closed', 2000)
  t.pass('both upstream calls closed')
})

t.test('upstream errors map as on chat: status, envelope, retry advice', async t => {
  const { baseURL } = await startStack(t, { env: { UPSTREAM_MAX_ATTEMPTS: '1' } })
  const cases: Array<[string, number, string | null, string]> = [
    ['invalid_api_key', 401, 'invalid_api_key', 'false'],
    ['access_denied', 403, null, 'false'],
    ['limit_requests', 429, 'limit_requests', 'true'],
    ['allocation_quota_unwrapped', 429, null, 'false'],
    ['data_inspection_failed', 400, 'data_inspection_failed', 'false'],
    ['model_not_found', 404, 'model_not_found', 'false'],
    ['internal_error', 500, null, 'true'],
    ['bad_gateway_html', 502, null, 'true']
  ]
  for (const [name, status, code, shouldRetry] of cases) {
    const res = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: texts(3), sim: { error: name } })
    t.equal(res.status, status, name)
    t.equal(res.headers.get('x-gateway-error-source'), 'upstream', name)
    t.equal(res.headers.get('x-should-retry'), shouldRetry, name)
    const text = await res.text()
    t.notMatch(text, /<html/i, name)
    const { error } = JSON.parse(text)
    t.same(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], name)
    if (code) t.match(error.code, code, name)
  }

  const unknown = await postJson(`${baseURL}/embeddings`, { model: 'qwen-plus', input: 'x' })
  t.equal(unknown.status, 404, 'a model the upstream does not embed with')
  t.equal((await readJson(unknown)).error.code, 'model_not_found')

  // A batch limit set above the upstream's: its 400 reaches the client as a 400, not a 5xx.
  const big = await startStack(t, { env: { EMBEDDINGS_BATCH_SIZE: '20' } })
  const res = await postJson(`${big.baseURL}/embeddings`, { model: MODEL, input: texts(15) })
  t.equal(res.status, 400)
  t.match((await readJson(res)).error.message, /batch size is invalid, it should not be larger than 10/)
})

t.test('the upstream refusing the gateway\'s key is told apart from the client\'s own bad key', async t => {
  const { baseURL } = await startStack(t, { sim: { apiKeys: ['sk-upstream-right'] }, env: { DASHSCOPE_API_KEY: 'sk-upstream-wrong', GATEWAY_API_KEYS: 'client-key' } })
  const own = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: 'x' }, { authorization: 'Bearer nope' })
  t.equal(own.status, 401)
  t.equal(own.headers.get('x-gateway-error-source'), 'gateway')
  const upstream = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: texts(12) }, { authorization: 'Bearer client-key' })
  t.equal(upstream.status, 401)
  t.equal(upstream.headers.get('x-gateway-error-source'), 'upstream')
  const text = await upstream.text()
  t.match(JSON.parse(text).error.message, /upstream .* rejected the gateway's credentials/)
  t.notMatch(text, /sk-upstream/, 'no key in the answer')
})

t.test('an unreadable upstream answer is a 502 naming what was wrong; a silent one a 504', async t => {
  // A broken upstream: one vector short, and a string among the numbers.
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, '0.2'] }], usage: { prompt_tokens: 1, total_tokens: 1 } }))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise(resolve => server.close(resolve)))
  const { port } = server.address() as AddressInfo
  const broken = await startStack(t, { env: { DASHSCOPE_BASE_URL: `http://127.0.0.1:${port}/v1` } })
  const short = await postJson(`${broken.baseURL}/embeddings`, { model: MODEL, input: ['a', 'b'] })
  t.equal(short.status, 502)
  const shortError = (await readJson(short)).error
  t.equal(shortError.code, 'upstream_protocol_error')
  t.match(shortError.message, /1 embeddings for 2 inputs/)
  const wrong = await postJson(`${broken.baseURL}/embeddings`, { model: MODEL, input: 'a' })
  t.equal(wrong.status, 502)
  t.match((await readJson(wrong)).error.message, /data\[0\]\.embedding is not an array of numbers/)

  const silent = await startStack(t, { env: { UPSTREAM_BODY_TIMEOUT_MS: '200' } })
  const res = await postJson(`${silent.baseURL}/embeddings`, { model: MODEL, input: 'x', sim: { stall: 'after_first' } })
  t.equal(res.status, 504)
  t.equal((await readJson(res)).error.code, 'upstream_timeout')
})

t.test('budgets: the usage the upstream reported is what the client is charged', async t => {
  const { baseURL } = await startStack(t, { env: { GATEWAY_API_KEYS: 'client-key', RATE_LIMIT_TPM: '100000' } })
  const headers = { authorization: 'Bearer client-key' }
  const inputs = texts(25)
  const first = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: inputs }, headers)
  t.equal(first.status, 200)
  t.equal(first.headers.get('x-ratelimit-limit-tokens'), '100000')
  await first.arrayBuffer()
  const second = await postJson(`${baseURL}/embeddings`, { model: MODEL, input: 'x' }, headers)
  await second.arrayBuffer()
  const used = inputs.reduce((sum, text) => sum + simTokens(text), 0)
  // The second request's remaining count is taken after the first was settled to its real usage, less its own reserve.
  const remaining = Number(second.headers.get('x-ratelimit-remaining-tokens'))
  t.equal(remaining, 100000 - used - Math.ceil(1 / 4))
})

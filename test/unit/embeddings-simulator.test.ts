import t from 'tap'
import type { Test } from 'tap'
import { startSimulator, type Simulator, type SimulatorOptions } from '../simulator/index.ts'
import { simTokens, simVector } from '../simulator/embeddings.ts'

// The simulator's POST /v1/embeddings, as DashScope's compatible mode answers it (wire contract §1.11 and §5).

async function start (t: Test, options?: SimulatorOptions): Promise<Simulator> {
  const sim = await startSimulator(options)
  t.teardown(() => sim.close())
  return sim
}

async function embed (sim: Simulator, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, json: any }> {
  const res = await fetch(`${sim.url}/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body)
  })
  return { status: res.status, json: await res.json() }
}

t.test('vectors come from the text alone, usage from its length', async t => {
  const sim = await start(t)
  const { status, json } = await embed(sim, { model: 'text-embedding-v4', input: ['hello', 'world é'] })
  t.equal(status, 200)
  t.equal(json.object, 'list')
  t.equal(json.model, 'text-embedding-v4')
  t.type(json.id, 'string')
  t.same(json.data.map((item: any) => [item.object, item.index, item.embedding.length]), [['embedding', 0, 1024], ['embedding', 1, 1024]])
  t.same(json.data[0].embedding, simVector('hello', 1024), 'the same text, the same vector')
  const norm = Math.hypot(...json.data[1].embedding)
  t.ok(Math.abs(norm - 1) < 1e-9, 'unit length')
  const tokens = simTokens('hello') + simTokens('world é')
  t.same(json.usage, { prompt_tokens: tokens, total_tokens: tokens })

  const single = await embed(sim, { model: 'text-embedding-v4', input: 'world é' })
  t.same(single.json.data[0].embedding, json.data[1].embedding, 'position and batch do not change a vector')
  t.notSame(simVector('hello', 8), simVector('hellp', 8), 'different texts, different vectors')
})

t.test('more than 10 inputs: DashScope\'s 400', async t => {
  const sim = await start(t)
  const ten = await embed(sim, { model: 'text-embedding-v4', input: Array.from({ length: 10 }, (_, i) => `t${i}`) })
  t.equal(ten.status, 200)
  const eleven = await embed(sim, { model: 'text-embedding-v4', input: Array.from({ length: 11 }, (_, i) => `t${i}`) })
  t.equal(eleven.status, 400)
  t.match(eleven.json, { error: { message: 'batch size is invalid, it should not be larger than 10', code: 'invalid_parameter_error' } })
})

t.test('dimensions are honoured, and checked on text-embedding-v3/v4', async t => {
  const sim = await start(t)
  const small = await embed(sim, { model: 'text-embedding-v4', input: 'x', dimensions: 64 })
  t.equal(small.json.data[0].embedding.length, 64)
  const big = await embed(sim, { model: 'text-embedding-v4', input: 'x', dimensions: 2048 })
  t.equal(big.json.data[0].embedding.length, 2048)
  t.equal((await embed(sim, { model: 'text-embedding-v4', input: 'x', dimensions: 100 })).status, 400)
  t.equal((await embed(sim, { model: 'text-embedding-v3', input: 'x', dimensions: 2048 })).status, 400, 'v3 stops at 1024')
  t.equal((await embed(sim, { model: 'text-embedding-v2', input: 'x' })).json.data[0].embedding.length, 1536)
})

t.test('base64 when asked: little-endian float32', async t => {
  const sim = await start(t)
  const { json } = await embed(sim, { model: 'text-embedding-v4', input: 'x', dimensions: 64, encoding_format: 'base64' })
  const bytes = Buffer.from(json.data[0].embedding, 'base64')
  const floats = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))
  t.same(floats, simVector('x', 64).map(Math.fround))
})

t.test('bad inputs, unknown models, auth and injected errors', async t => {
  const sim = await start(t, { apiKeys: ['sk-good'], models: ['qwen-plus', 'Qwen/Qwen3-Embedding-8B'] })
  const auth = { authorization: 'Bearer sk-good' }
  t.equal((await embed(sim, { model: 'text-embedding-v4', input: 'x' })).status, 401)
  t.equal((await embed(sim, { model: 'text-embedding-v4', input: [] }, auth)).status, 400)
  t.equal((await embed(sim, { model: 'text-embedding-v4', input: [1, 2] }, auth)).status, 400)
  t.equal((await embed(sim, { model: 'text-embedding-v4', input: [''] }, auth)).status, 400)
  const unknown = await embed(sim, { model: 'qwen-plus', input: 'x' }, auth)
  t.equal(unknown.status, 404, 'a chat model does not embed')
  t.equal(unknown.json.error.code, 'model_not_found')
  t.equal((await embed(sim, { model: 'Qwen/Qwen3-Embedding-8B', input: 'x' }, auth)).status, 200, 'an embedding id from `models`')
  const quota = await embed(sim, { model: 'text-embedding-v4', input: 'x', sim: { error: 'allocation_quota' } }, auth)
  t.equal(quota.status, 429)

  const fresh = await start(t)
  fresh.setOverride((_request, index) => index === 1 ? { error: 'internal_error' } : undefined)
  t.equal((await embed(fresh, { model: 'text-embedding-v4', input: 'x' })).status, 200)
  t.equal((await embed(fresh, { model: 'text-embedding-v4', input: 'x' })).status, 500, 'overrides see the embeddings call count')
})

import t from 'tap'
import type { Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RecordedRequest } from '../simulator/index.ts'
import { postJson, startStack } from '../helper.ts'

/** A response body as JSON, typed loosely: the tests check its shape themselves. */
const readJson = async (res: Response): Promise<any> => res.json()

const modelListCalls = (requests: RecordedRequest[]) =>
  requests.filter(request => request.method === 'GET' && request.path.split('?')[0] === '/v1/models')

const ids = (list: { data: Array<{ id: string }> }) => list.data.map(model => model.id)

function isModelObject (t: Test, model: Record<string, unknown>) {
  t.same(Object.keys(model).sort(), ['created', 'id', 'object', 'owned_by'], `${String(model.id)}: model fields`)
  t.equal(model.object, 'model')
  t.type(model.id, 'string')
  t.ok(Number.isInteger(model.created), 'created is an integer')
  t.type(model.owned_by, 'string')
}

async function expectError (t: Test, res: Response, status: number, code: string) {
  t.equal(res.status, status, `status ${status}`)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const envelope = await readJson(res)
  t.same(Object.keys(envelope), ['error'], 'only the error envelope')
  t.same(Object.keys(envelope.error).sort(), ['code', 'message', 'param', 'type'])
  t.equal(envelope.error.code, code)
  t.type(envelope.error.message, 'string')
  t.ok(envelope.error.message.length > 0, 'a message')
  return envelope.error
}

t.test('GET /v1/models lists the upstream\'s models, fetched once and cached', async t => {
  const upstreamModels = ['qwen-plus', 'qwen-flash', 'qwen3-max']
  const { sim, baseURL } = await startStack(t, { sim: { models: upstreamModels } })

  const first = await fetch(`${baseURL}/models`)
  t.equal(first.status, 200)
  t.match(first.headers.get('content-type'), /^application\/json/)
  const list = await readJson(first)
  t.equal(list.object, 'list')
  t.same(ids(list), upstreamModels, 'the upstream\'s ids, in its order')
  for (const model of list.data) isModelObject(t, model)
  t.equal(list.data[0].created, 1752741600, 'the upstream\'s created timestamp')
  t.equal(list.data[0].owned_by, 'system', 'the upstream\'s owner')

  const second = await fetch(`${baseURL}/models`)
  t.same(await readJson(second), list, 'the same list again')
  const retrieved = await fetch(`${baseURL}/models/qwen-flash`)
  t.equal(retrieved.status, 200)
  t.equal(modelListCalls(sim.requests).length, 1, 'one upstream /models request for three calls')
})

t.test('concurrent calls share one upstream /models request', async t => {
  const { sim, baseURL } = await startStack(t)
  const answers = await Promise.all(Array.from({ length: 5 }, () => fetch(`${baseURL}/models`)))
  for (const res of answers) t.equal(res.status, 200)
  t.equal(modelListCalls(sim.requests).length, 1)
})

t.test('the cache expires after MODELS_CACHE_TTL_MS and the list is fetched again', async t => {
  const { sim, baseURL } = await startStack(t, { env: { MODELS_CACHE_TTL_MS: '150' } })
  t.equal((await fetch(`${baseURL}/models`)).status, 200)
  t.equal((await fetch(`${baseURL}/models`)).status, 200)
  t.equal(modelListCalls(sim.requests).length, 1, 'cached within the TTL')
  await sleep(250)
  const again = await fetch(`${baseURL}/models`)
  t.equal(again.status, 200)
  t.ok(ids(await readJson(again)).includes('qwen-plus'))
  t.equal(modelListCalls(sim.requests).length, 2, 'fetched again once the TTL passed')
})

for (const modelsStatus of [404, 500]) {
  t.test(`an upstream without a model list (HTTP ${modelsStatus}) gives the configured MODELS`, async t => {
    const { sim, baseURL } = await startStack(t, {
      sim: { modelsStatus },
      env: { MODELS: 'qwen3-8b, qwen-local ,Qwen/Qwen3-32B' }
    })
    const res = await fetch(`${baseURL}/models`)
    t.equal(res.status, 200)
    const list = await readJson(res)
    t.equal(list.object, 'list')
    t.same(ids(list), ['qwen3-8b', 'qwen-local', 'Qwen/Qwen3-32B'])
    for (const model of list.data) isModelObject(t, model)

    const one = await fetch(`${baseURL}/models/qwen-local`)
    t.equal(one.status, 200)
    t.equal((await readJson(one)).id, 'qwen-local')
    const missing = await fetch(`${baseURL}/models/qwen-plus`)
    await expectError(t, missing, 404, 'model_not_found')
    t.ok(modelListCalls(sim.requests).length >= 1, 'the upstream was asked')
  })
}

t.test('GET /v1/models/:model retrieves one model, or 404 model_not_found', async t => {
  const { baseURL } = await startStack(t)
  const res = await fetch(`${baseURL}/models/qwen-plus`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const model = await readJson(res)
  isModelObject(t, model)
  t.equal(model.id, 'qwen-plus')

  const missing = await fetch(`${baseURL}/models/no-such-model`)
  const error = await expectError(t, missing, 404, 'model_not_found')
  t.equal(error.message, "The model 'no-such-model' does not exist or is not served by this gateway. GET /v1/models lists the models it serves.",
    'the message names the model and where the list is, in the words chat uses for it (test/routes/consistency.test.ts)')
  t.equal(error.param, 'model')

  const prefix = await fetch(`${baseURL}/models/qwen`)
  await expectError(t, prefix, 404, 'model_not_found')
})

t.test('a model id with a slash works raw and URL-encoded', async t => {
  const { baseURL } = await startStack(t, { sim: { models: ['qwen-plus', 'Qwen/Qwen3-8B'] } })
  const list = await readJson(await fetch(`${baseURL}/models`))
  t.same(ids(list), ['qwen-plus', 'Qwen/Qwen3-8B'])

  for (const path of ['Qwen/Qwen3-8B', 'Qwen%2FQwen3-8B', encodeURIComponent('Qwen/Qwen3-8B')]) {
    const res = await fetch(`${baseURL}/models/${path}`)
    t.equal(res.status, 200, `${path}: 200`)
    const model = await readJson(res)
    t.equal(model.id, 'Qwen/Qwen3-8B', `${path}: the model`)
    t.equal(model.object, 'model')
  }
  const missing = await fetch(`${baseURL}/models/Qwen/Qwen3-999B`)
  await expectError(t, missing, 404, 'model_not_found')
})

t.test('with GATEWAY_API_KEYS set, /v1 needs a client key while /health and /metrics stay open', async t => {
  const clientKeys = ['ck-test-alpha-0001', 'ck-test-beta-0002']
  const { baseURL, origin } = await startStack(t, { env: { GATEWAY_API_KEYS: clientKeys.join(',') } })

  const none = await fetch(`${baseURL}/models`)
  const error = await expectError(t, none, 401, 'invalid_api_key')
  t.notMatch(error.message, clientKeys[0], 'the message does not reveal a key')

  const wrong = await fetch(`${baseURL}/models`, { headers: { authorization: 'Bearer ck-test-wrong' } })
  await expectError(t, wrong, 401, 'invalid_api_key')

  const notBearer = await fetch(`${baseURL}/models`, { headers: { authorization: `Basic ${clientKeys[0]}` } })
  await expectError(t, notBearer, 401, 'invalid_api_key')

  for (const key of clientKeys) {
    const ok = await fetch(`${baseURL}/models`, { headers: { authorization: `Bearer ${key}` } })
    t.equal(ok.status, 200, 'a configured key works')
    t.equal((await readJson(ok)).object, 'list')
  }
  const one = await fetch(`${baseURL}/models/qwen-plus`, { headers: { authorization: `Bearer ${clientKeys[1]}` } })
  t.equal(one.status, 200)

  const refusedRetrieve = await fetch(`${baseURL}/models/qwen-plus`)
  await expectError(t, refusedRetrieve, 401, 'invalid_api_key')
  const refusedChat = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] })
  await expectError(t, refusedChat, 401, 'invalid_api_key')
  const refusedLegacy = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: 'hi' })
  await expectError(t, refusedLegacy, 401, 'invalid_api_key')

  const health = await fetch(`${origin}/health`)
  t.equal(health.status, 200, '/health without a key')
  t.equal((await readJson(health)).status, 'ok')
  const metrics = await fetch(`${origin}/metrics`)
  t.equal(metrics.status, 200, '/metrics without a key')
  const text = await metrics.text()
  t.match(text, /# TYPE /)
  for (const key of clientKeys) t.notOk(text.includes(key), 'no client key in /metrics')
})

t.test('the model list goes through the same key handling as chat: a refused key is set aside, another serves', async t => {
  const { baseURL, origin } = await startStack(t, {
    sim: { apiKeys: ['sk-good'], models: ['qwen-plus', 'qwen-sim-only'] },
    env: { DASHSCOPE_API_KEY: 'sk-revoked,sk-good' }
  })
  const list = (await (await fetch(`${baseURL}/models`)).json()) as any
  t.same(list.data.map((model: any) => model.id), ['qwen-plus', 'qwen-sim-only'], 'the upstream\'s own list, not MODELS')
  const health = (await (await fetch(`${origin}/health`)).json()) as any
  t.match(health.upstreams[0].keys[0], { key: 'key-1', state: 'disabled', reason: 'refused' })
})

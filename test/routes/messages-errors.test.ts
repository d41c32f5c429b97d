import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { serverOptions } from '../../src/server-options.ts'
import { postJson, readEvents, startStack, type Stack } from '../helper.ts'
import { checkGrammar } from '../unit/messages-grammar.ts'

// Every error on the Anthropic routes, whoever raised it, in Anthropic's envelope and status table (wire-apis §2.7).

const body = (extra: object = {}) => ({ model: 'qwen-plus', max_tokens: 100, messages: [{ role: 'user', content: 'x' }], ...extra })
const post = (stack: Stack, payload: object, headers: Record<string, string> = {}) => postJson(`${stack.baseURL}/messages`, payload, headers)

async function envelope (t: Test, res: Response, status: number, type: string) {
  t.equal(res.status, status, type)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const requestId = res.headers.get('request-id')
  t.ok(requestId, 'request-id header')
  const json = await res.json() as any
  t.same(Object.keys(json).sort(), ['error', 'request_id', 'type'])
  t.equal(json.type, 'error')
  t.equal(json.error.type, type)
  t.equal(json.request_id, requestId)
  t.type(json.error.message, 'string')
  return json.error.message as string
}

t.test('validation failures are 400 invalid_request_error', async t => {
  const stack = await startStack(t)
  t.match(await envelope(t, await post(stack, { model: 'qwen-plus', messages: [{ role: 'user', content: 'x' }] }), 400, 'invalid_request_error'), /max_tokens/)
  t.match(await envelope(t, await post(stack, body({ messages: [{ role: 'tool', content: 'x' }] })), 400, 'invalid_request_error'), /role/)
  t.match(await envelope(t, await post(stack, body({ messages: [] })), 400, 'invalid_request_error'), /messages/)
  const broken = await fetch(`${stack.baseURL}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' })
  t.match(await envelope(t, broken, 400, 'invalid_request_error'), /not valid JSON/)
  const pdf = body({ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } }] }] })
  t.match(await envelope(t, await post(stack, pdf), 400, 'invalid_request_error'), /not supported/)
  t.equal(stack.sim.requests.length, 0, 'nothing reached the upstream')
})

t.test('a body over BODY_LIMIT is 413 request_too_large', async t => {
  const stack = await startStack(t, { env: { BODY_LIMIT: '2048' } })
  await envelope(t, await post(stack, body({ system: 'x'.repeat(4096) })), 413, 'request_too_large')
})

t.test('the client limits\' 429 is rate_limit_error and keeps retry-after and x-should-retry', async t => {
  const stack = await startStack(t, { env: { RATE_LIMIT_RPM: '1' } })
  t.equal((await post(stack, body())).status, 200)
  const refused = await post(stack, body())
  t.ok(Number(refused.headers.get('retry-after')) > 0, 'retry-after')
  t.equal(refused.headers.get('x-should-retry'), 'true')
  t.match(await envelope(t, refused, 429, 'rate_limit_error'), /Rate limit reached/)
})

// Upstream errors before the first byte, streamed or not: the upstream's status class and words.
const upstreamCases: Array<[string, number, string, string | null]> = [
  ['invalid_api_key', 401, 'authentication_error', 'false'],
  ['access_denied', 403, 'permission_error', 'false'],
  ['rate_quota', 429, 'rate_limit_error', 'true'],
  ['allocation_quota', 429, 'rate_limit_error', 'false'],
  ['data_inspection_failed', 400, 'invalid_request_error', 'false'],
  ['model_not_found', 404, 'not_found_error', 'false'],
  ['internal_error', 500, 'api_error', 'true'],
  ['bad_gateway_html', 502, 'api_error', 'true'],
  ['service_unavailable_html', 529, 'overloaded_error', 'true']
]

t.test('upstream errors keep their status class, 503 becoming 529 overloaded_error', async t => {
  const stack = await startStack(t, { env: { UPSTREAM_RETRY_WINDOW_MS: '0' } })
  for (const [name, status, type, shouldRetry] of upstreamCases) {
    stack.sim.setOverride(() => ({ error: name as any }))
    for (const stream of [false, true]) {
      const res = await post(stack, body({ stream }))
      t.equal(res.headers.get('x-should-retry'), shouldRetry, `${name} x-should-retry`)
      const message = await envelope(t, res, status, type)
      t.notMatch(message, /<html/i)
    }
  }
})

t.test('context overflow reads "prompt is too long: N tokens > M maximum"', async t => {
  const stack = await startStack(t)
  stack.sim.setOverride(() => ({ error: 'context_overflow' }))
  for (const stream of [false, true]) {
    const res = await post(stack, body({ stream, system: 'word '.repeat(200_000) }))
    const message = await envelope(t, res, 400, 'invalid_request_error')
    const match = /^prompt is too long: (\d+) tokens > 129024 maximum$/.exec(message)
    t.ok(match, message.slice(0, 80))
    t.ok(Number(match?.[1]) > 129_024, 'the estimate of a 1 MB prompt')
  }
})

t.test('a failure after the first byte is event: error with the same body, then the stream closes', async t => {
  const stack = await startStack(t)
  for (const [fault, type] of [['event_error', 'rate_limit_error'], ['inspection', 'invalid_request_error'], ['reset', 'api_error']] as const) {
    stack.sim.setOverride(() => ({ midStream: fault, midStreamAfter: 3 }))
    const res = await post(stack, body({ stream: true }))
    t.equal(res.status, 200)
    const events = await readEvents(res)
    const result = checkGrammar(events)
    t.same(result.problems, [], fault)
    t.equal(events[0].event, 'message_start')
    t.equal(events.at(-1)?.event, 'error', fault)
    t.match(result.error, { type: 'error', error: { type, message: String }, request_id: res.headers.get('request-id') }, fault)
  }
})

t.test('an upstream that answers after the heartbeat and then fails: message_start, pings, then event: error', async t => {
  const stack = await startStack(t, { env: { HEARTBEAT_INTERVAL_MS: '50', UPSTREAM_RETRY_WINDOW_MS: '0' } })
  stack.sim.setOverride(() => ({ ttfbMs: 300, error: 'service_unavailable_html' }))
  const res = await post(stack, body({ stream: true }))
  t.equal(res.status, 200, 'headers went out with the first ping')
  const events = await readEvents(res)
  t.equal(events[0].event, 'message_start')
  t.ok(events.some(event => event.event === 'ping'))
  t.equal(events.at(-1)?.event, 'error')
  t.equal(JSON.parse(events.at(-1)!.data).error.type, 'overloaded_error')
})

t.test('an OpenAI envelope sent directly by another plugin is rewritten on these routes only', async t => {
  const config = loadConfig({ LOG_LEVEL: 'silent' })
  const server = Fastify(serverOptions(config))
  // Stands for any hook that answers by itself instead of throwing.
  server.addHook('onRequest', async (request, reply) => {
    if (request.headers['x-direct'] === 'yes') return reply.code(503).send({ error: { message: 'Shedding load', type: 'server_error', param: null, code: 'overloaded' } })
  })
  await server.register(fp(app), { config })
  t.after(() => server.close())
  const res = await server.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-direct': 'yes' }, payload: body() })
  t.equal(res.statusCode, 529)
  t.same(res.json(), { type: 'error', error: { type: 'overloaded_error', message: 'Shedding load' }, request_id: res.headers['request-id'] })
  const chat = await server.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'x-direct': 'yes' }, payload: body() })
  t.equal(chat.statusCode, 503)
  t.equal(chat.json().error.code, 'overloaded', 'chat keeps OpenAI\'s envelope')
})

import t, { type Test } from 'tap'
import { build } from '../helper.ts'

// No upstream is reachable from these tests: a request that passes validation would fail later with a 502,
// which is how "accepted" shows here. What is checked is what the gateway itself refuses, and how.
const NO_UPSTREAM = { DASHSCOPE_BASE_URL: 'http://127.0.0.1:9/v1', UPSTREAM_CONNECT_TIMEOUT_MS: '500' }

const valid = { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] }

async function post (t: Test, payload: unknown, url = '/v1/chat/completions', env = {}) {
  const app = await build(t, { ...NO_UPSTREAM, ...env })
  return app.inject({ method: 'POST', url, payload: payload as object })
}

function assertEnvelope (t: Test, res: { statusCode: number, headers: Record<string, unknown>, json: () => any }, status: number, param: string | null) {
  t.equal(res.statusCode, status)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json()
  t.same(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'])
  t.equal(body.error.param, param)
  t.equal(typeof body.error.message, 'string')
  t.notMatch(body.error.message, /at .*\.ts:\d+/, 'no stack trace')
  return body.error
}

const invalid: Array<[string, unknown, string | null]> = [
  ['missing model', { messages: valid.messages }, 'model'],
  ['model not a string', { ...valid, model: 7 }, 'model'],
  ['empty model', { ...valid, model: '' }, 'model'],
  ['missing messages', { model: 'qwen-plus' }, 'messages'],
  ['empty messages', { ...valid, messages: [] }, 'messages'],
  ['unknown role', { ...valid, messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
  ['content a number', { ...valid, messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
  ['content part without type', { ...valid, messages: [{ role: 'user', content: [{ text: 'x' }] }] }, 'messages[0].content'],
  ['temperature out of range', { ...valid, temperature: 2.5 }, 'temperature'],
  ['temperature as a string is not coerced', { ...valid, temperature: '1' }, 'temperature'],
  ['stream as a string is not coerced', { ...valid, stream: 'true' }, 'stream'],
  ['top_p above 1', { ...valid, top_p: 1.5 }, 'top_p'],
  ['n zero', { ...valid, n: 0 }, 'n'],
  ['max_tokens negative', { ...valid, max_tokens: -1 }, 'max_tokens'],
  ['max_tokens absurd', { ...valid, max_tokens: 1e11 }, 'max_tokens'],
  ['max_completion_tokens absurd', { ...valid, max_completion_tokens: 1e11 }, 'max_completion_tokens'],
  ['stop with five entries', { ...valid, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
  ['tool call without function name', { ...valid, messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { arguments: '{}' } }] }] }, 'messages[0].tool_calls'],
  ['tools not an array', { ...valid, tools: {} }, 'tools'],
  ['body is an array', [valid], null]
]

for (const [name, payload, param] of invalid) {
  t.test(`400 for ${name}`, async t => {
    const res = await post(t, payload)
    const error = assertEnvelope(t, res, 400, param)
    t.equal(error.type, 'invalid_request_error')
    if (param) t.ok(error.message.includes(`'${param}'`), 'the message names the field')
  })
}

t.test('the message of a missing field names it', async t => {
  const error = assertEnvelope(t, await post(t, { messages: valid.messages }), 400, 'model')
  t.equal(error.message, "Missing required parameter: 'model'.")
})

t.test('an empty model and an absurd max_tokens are refused in words that say what to send', async t => {
  const empty = assertEnvelope(t, await post(t, { ...valid, model: '' }), 400, 'model')
  t.equal(empty.message, "Invalid value for 'model': must not be empty. GET /v1/models lists the models this gateway serves.")
  t.equal(empty.code, 'invalid_value')
  const absurd = assertEnvelope(t, await post(t, { ...valid, max_tokens: 1e11 }), 400, 'max_tokens')
  t.equal(absurd.message, "Invalid value for 'max_tokens': must be an integer from 1 to 1000000, or null.")
  t.equal(absurd.code, 'invalid_value')
})

t.test('malformed and empty JSON bodies are 400s', async t => {
  const app = await build(t, NO_UPSTREAM)
  for (const payload of ['{"model":', '{"model":"x",}', 'nul']) {
    const res = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, payload })
    assertEnvelope(t, res, 400, null)
    t.equal(res.json().error.code, 'invalid_json')
  }
  const empty = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, payload: '' })
  assertEnvelope(t, empty, 400, null)
})

t.test('a body over BODY_LIMIT is a 413 that states the limit', async t => {
  const res = await post(t, { ...valid, messages: [{ role: 'user', content: 'x'.repeat(5000) }] }, '/v1/chat/completions', { BODY_LIMIT: '4096' })
  const error = assertEnvelope(t, res, 413, null)
  t.match(error.message, /4096 bytes \(BODY_LIMIT\)/)
})

t.test('a body that is not JSON is refused with a message about the content type', async t => {
  const app = await build(t, NO_UPSTREAM)
  for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
    const res = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': type }, payload: 'model=qwen' })
    t.ok([400, 415].includes(res.statusCode), `${type}: ${res.statusCode}`)
    t.match(res.json().error.message, /application\/json/)
  }
})

t.test('unknown routes and methods are 404s in the envelope', async t => {
  const app = await build(t, NO_UPSTREAM)
  for (const [method, url] of [['GET', '/v1/chat/completions'], ['POST', '/v1/embeddingz'], ['GET', '/nope?api_key=secret']] as const) {
    const res = await app.inject({ method, url })
    const error = assertEnvelope(t, res, 404, null)
    t.notMatch(error.message, /secret/, 'the query string is not echoed')
  }
})

t.test('everything OpenAI accepts passes validation', async t => {
  const app = await build(t, NO_UPSTREAM)
  const bodies: Array<[string, object]> = [
    ['array content with image, audio and file parts', {
      ...valid,
      messages: [{
        role: 'user',
        content: [
          { type: 'text', text: 'look', cache_control: { type: 'ephemeral' } },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'high' } },
          { type: 'input_audio', input_audio: { data: 'UklGR', format: 'wav' } },
          { type: 'file', file: { file_id: 'file-1' } }
        ]
      }]
    }],
    ['developer role, names, null content beside tool calls, tool results', {
      ...valid,
      messages: [
        { role: 'developer', content: 'be brief', name: 'policy' },
        { role: 'system', content: [{ type: 'text', text: 'sys' }] },
        { role: 'user', content: 'read a.ts', name: 'alice' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.ts"}' } }] },
        { role: 'assistant', content: '', tool_calls: [{ id: 'call_2', type: 'function', function: { name: 'x', arguments: '' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'export {}' },
        { role: 'assistant', content: 'done', refusal: null }
      ]
    }],
    ['tools without parameters, strict, tool_choice object, parallel_tool_calls', {
      ...valid,
      tools: [
        { type: 'function', function: { name: 'ping' } },
        { type: 'function', function: { name: 'attempt_completion', strict: true, parameters: { type: 'object', properties: { result: { type: 'string' } }, required: ['result'], additionalProperties: false } } }
      ],
      tool_choice: { type: 'function', function: { name: 'ping' } },
      parallel_tool_calls: true
    }],
    ['newer and optional parameters', {
      ...valid,
      max_completion_tokens: 8192,
      reasoning_effort: 'medium',
      metadata: { sessionId: 'abc' },
      store: false,
      seed: 42,
      user: 'u-1',
      logprobs: false,
      top_logprobs: 0,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' }, strict: true } },
      stream_options: { include_usage: true },
      stop: ['\n\n'],
      modalities: ['text']
    }],
    ['null for every optional parameter', {
      ...valid,
      temperature: null,
      top_p: null,
      n: null,
      max_tokens: null,
      max_completion_tokens: null,
      presence_penalty: null,
      frequency_penalty: null,
      seed: null,
      stop: null,
      stream: null,
      stream_options: null,
      parallel_tool_calls: null,
      metadata: null,
      store: null,
      logprobs: null
    }],
    ['DashScope extras at the top level', { ...valid, enable_thinking: true, thinking_budget: 1024, enable_search: true, search_options: { forced_search: true }, top_k: 20, vl_high_resolution_images: true }]
  ]
  for (const [name, payload] of bodies) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      headers: { 'x-stainless-lang': 'js', 'http-referer': 'https://github.com/RooVetGit/Roo-Cline', 'x-title': 'Roo Code' },
      payload
    })
    t.equal(res.statusCode, 502, `${name}: accepted, then failed only because no upstream runs here`)
  }
})

import t, { type Test } from 'tap'
import type { RecordedRequest } from '../simulator/index.ts'
import { postJson, readEvents, payloads, startStack, user } from '../helper.ts'
import { addUsage } from '../../src/adapters/usage.ts'
import { errorFromUpstreamBody, unknownModel } from '../../src/adapters/upstream-errors.ts'
import { MAX_OUTPUT_TOKENS } from '../../src/schemas/common.ts'

// The same mistake gets the same answer whichever family it is sent to (issue 11, item 7): an empty model, an unknown
// model, an absurd output budget; and legacy completions report usage in one shape for one prompt or many.

const readJson = async (res: Response): Promise<any> => res.json()

const upstreamCalls = (requests: RecordedRequest[]) => requests.filter(request => request.method === 'POST')

/** A request body per family, with `model` and the family's output-token field set as given. */
const FAMILIES = {
  chat: { path: '/chat/completions', body: (model: string) => ({ model, messages: user('hi') }) },
  completions: { path: '/completions', body: (model: string) => ({ model, prompt: 'hi' }) },
  responses: { path: '/responses', body: (model: string) => ({ model, input: 'hi' }) },
  embeddings: { path: '/embeddings', body: (model: string) => ({ model, input: 'hi' }) },
  messages: { path: '/messages', body: (model: string) => ({ model, max_tokens: 64, messages: user('hi') }) }
} as const

async function openAIError (t: Test, res: Response, status: number) {
  t.equal(res.status, status, `status ${status}`)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const body = await readJson(res)
  t.same(Object.keys(body), ['error'], 'only the error envelope')
  t.same(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'])
  return body.error
}

async function anthropicError (t: Test, res: Response, status: number) {
  t.equal(res.status, status, `status ${status}`)
  t.match(res.headers.get('content-type'), /^application\/json/)
  const body = await readJson(res)
  t.equal(body.type, 'error')
  t.same(Object.keys(body.error).sort(), ['message', 'type'])
  return body.error
}

const EMPTY_MODEL = "Invalid value for 'model': must not be empty. GET /v1/models lists the models this gateway serves."

t.test('"model": "" is the gateway\'s own 400 naming model on every family, and nothing goes upstream', async t => {
  const { sim, baseURL } = await startStack(t)
  for (const [family, { path, body }] of Object.entries(FAMILIES)) {
    const res = await postJson(`${baseURL}${path}`, body(''))
    t.equal(res.headers.get('x-gateway-error-source'), 'gateway', `${family}: the gateway's own answer`)
    if (family === 'messages') {
      t.same(await anthropicError(t, res, 400), { type: 'invalid_request_error', message: EMPTY_MODEL }, family)
    } else {
      t.same(await openAIError(t, res, 400), { message: EMPTY_MODEL, type: 'invalid_request_error', param: 'model', code: 'invalid_value' }, family)
    }
  }
  const stream = await postJson(`${baseURL}/chat/completions`, { ...FAMILIES.chat.body(''), stream: true })
  t.equal((await openAIError(t, stream, 400)).message, EMPTY_MODEL, 'streamed chat too')
  t.same(upstreamCalls(sim.requests), [], 'no request reached the upstream')
})

t.test('a model that is not a string says so in words, and where to find the ids', async t => {
  const { baseURL } = await startStack(t)
  const error = await openAIError(t, await postJson(`${baseURL}/chat/completions`, FAMILIES.chat.body(7 as any)), 400)
  t.same(error, {
    message: "Invalid value for 'model': must be a string. GET /v1/models lists the models this gateway serves.",
    type: 'invalid_request_error',
    param: 'model',
    code: 'invalid_type'
  })
})

const UNKNOWN = "The model 'qwen-nope' does not exist or is not served by this gateway. GET /v1/models lists the models it serves."

t.test('an unknown model gets one text on GET /v1/models/{model} and on every family', async t => {
  const { baseURL } = await startStack(t, { sim: { strictModels: true } })
  const expected = { message: UNKNOWN, type: 'invalid_request_error', param: 'model', code: 'model_not_found' }

  const retrieved = await fetch(`${baseURL}/models/qwen-nope`)
  t.equal(retrieved.headers.get('x-gateway-error-source'), 'gateway')
  t.same(await openAIError(t, retrieved, 404), expected, 'GET /v1/models/qwen-nope')

  for (const [family, { path, body }] of Object.entries(FAMILIES)) {
    const res = await postJson(`${baseURL}${path}`, body('qwen-nope'))
    t.equal(res.headers.get('x-gateway-error-source'), 'upstream', `${family}: the upstream said it`)
    t.equal(res.headers.get('x-should-retry'), 'false', `${family}: not worth a retry`)
    if (family === 'messages') {
      t.same(await anthropicError(t, res, 404), { type: 'not_found_error', message: UNKNOWN }, family)
    } else {
      t.same(await openAIError(t, res, 404), expected, family)
    }
  }
  const stream = await postJson(`${baseURL}/chat/completions`, { ...FAMILIES.chat.body('qwen-nope'), stream: true })
  t.same(await openAIError(t, stream, 404), expected, 'streamed chat too')
})

t.test('every upstream\'s way of saying "no such model" becomes the same text; other 404s do not', async t => {
  const context = { name: 'dashscope', host: 'upstream.test', keyCount: 1, nativeTools: true }
  const read = (status: number, body: unknown) => errorFromUpstreamBody(status, JSON.stringify(body), context)

  const dashscope = read(404, { error: { message: 'The model `qwen-nope` does not exist or you do not have access to it.', type: 'invalid_request_error', param: null, code: 'model_not_found' }, request_id: 'r' })
  const vllm = read(404, { object: 'error', message: 'The model `qwen-nope` does not exist.', type: 'NotFoundError', param: null, code: 404 })
  const ollama = read(404, { error: 'model "qwen-nope" not found, try pulling it first' })
  for (const [name, error] of [['DashScope', dashscope], ['vLLM', vllm], ['Ollama', ollama]] as const) {
    t.same(error.toJSON(), { error: { message: UNKNOWN, type: 'invalid_request_error', param: 'model', code: 'model_not_found' } }, name)
    t.equal(error.statusCode, 404, `${name}: 404`)
    t.equal(error.source, 'upstream', `${name}: still the upstream's answer`)
    t.match(error.upstream?.message, /qwen-nope/, `${name}: the upstream's own words are kept for the log`)
  }

  const unnamed = read(404, { error: { message: 'Model not found', code: 'model_not_found' } })
  t.equal(unnamed.message, 'The model asked for does not exist or is not served by this gateway. GET /v1/models lists the models it serves.')
  t.equal(unnamed.code, 'model_not_found')

  const wrongPath = read(404, { error: { message: 'The requested resource `POST /v1/chat/completions/chat/completions` was not found.', code: 'not_found' } })
  t.equal(wrongPath.code, 'not_found', 'a wrong URL is not an unknown model')
  t.match(wrongPath.message, /requested resource/)
  t.equal(unknownModel(404, { message: 'No route for /v1/models/x', type: null, code: null, param: null }), null)
  t.equal(unknownModel(400, { message: 'The model `x` does not exist.', type: null, code: 'invalid_parameter_error', param: null }), null, 'only a 404 is read from its text')
})

t.test(`output-token budgets are integers from 1 to ${MAX_OUTPUT_TOKENS}: 1e11 is a 400 naming the field`, async t => {
  const { sim, baseURL } = await startStack(t)
  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    ['chat max_tokens', '/chat/completions', { model: 'qwen-plus', messages: user('hi') }, 'max_tokens'],
    ['chat max_completion_tokens', '/chat/completions', { model: 'qwen-plus', messages: user('hi') }, 'max_completion_tokens'],
    ['legacy max_tokens', '/completions', { model: 'qwen-plus', prompt: 'hi' }, 'max_tokens'],
    ['responses max_output_tokens', '/responses', { model: 'qwen-plus', input: 'hi' }, 'max_output_tokens']
  ]
  for (const [label, path, body, field] of cases) {
    for (const value of [1e11, MAX_OUTPUT_TOKENS + 1, 0, 1.5]) {
      const error = await openAIError(t, await postJson(`${baseURL}${path}`, { ...body, [field]: value }), 400)
      t.same(error, {
        message: `Invalid value for '${field}': must be an integer from 1 to 1000000, or null.`,
        type: 'invalid_request_error',
        param: field,
        code: 'invalid_value'
      }, `${label} = ${value}`)
    }
  }
  const messages = { model: 'qwen-plus', messages: user('hi') }
  for (const [value, message] of [[1e11, 'must be an integer from 1 to 1000000'], [MAX_OUTPUT_TOKENS + 1, 'must be an integer from 1 to 1000000'], [0, 'must be an integer from 1 to 1000000'], [1.5, 'must be an integer']] as const) {
    const error = await anthropicError(t, await postJson(`${baseURL}/messages`, { ...messages, max_tokens: value }), 400)
    t.same(error, { type: 'invalid_request_error', message: `Invalid value for 'max_tokens': ${message}.` }, `messages max_tokens = ${value}`)
  }
  const hot = await anthropicError(t, await postJson(`${baseURL}/messages`, { ...messages, max_tokens: 64, temperature: 3 }), 400)
  t.equal(hot.message, "Invalid value for 'temperature': must be a number from 0 to 2.", 'any range says both ends, as on chat')
  t.same(upstreamCalls(sim.requests), [], 'none of them reached the upstream')

  // The bound itself, and what real clients send, pass.
  for (const [path, body, field] of cases.map(([, path, body, field]) => [path, body, field] as const)) {
    const res = await postJson(`${baseURL}${path}`, { ...body, [field]: MAX_OUTPUT_TOKENS })
    t.equal(res.status, 200, `${path} ${field} = ${MAX_OUTPUT_TOKENS}`)
  }
  for (const value of [128_000, MAX_OUTPUT_TOKENS]) {
    const res = await postJson(`${baseURL}/messages`, { ...messages, max_tokens: value })
    t.equal(res.status, 200, `messages max_tokens = ${value} (clamped to the model's ceiling)`)
  }
})

t.test('legacy usage has the same fields for one prompt and for an array, answered or streamed', async t => {
  const { baseURL } = await startStack(t)
  const sim = { usage: { prompt_tokens: 3, completion_tokens: 5, cached_tokens: 2 } }
  const one = await readJson(await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: 'a', sim }))
  const two = await readJson(await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: ['a', 'b'], sim }))
  t.same(one.usage, { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8, cache_read_input_tokens: 2, prompt_tokens_details: { cached_tokens: 2 } }, 'one prompt')
  t.same(two.usage, { prompt_tokens: 6, completion_tokens: 10, total_tokens: 16, cache_read_input_tokens: 4, prompt_tokens_details: { cached_tokens: 4 } }, 'two prompts: the same fields, summed')
  t.same(Object.keys(two.usage), Object.keys(one.usage), 'in the same order')

  const streamed = async (prompt: string | string[]) => {
    const res = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt, stream: true, stream_options: { include_usage: true }, sim })
    return payloads(await readEvents(res)).filter((chunk: any) => chunk.usage).map((chunk: any) => chunk.usage)
  }
  const streamOne = await streamed('a')
  const streamTwo = await streamed(['a', 'b'])
  t.equal(streamOne.length, 1)
  t.equal(streamTwo.length, 1)
  // DashScope's stream sends completion_tokens_details: null when the model did not reason: no field, as in JSON.
  t.same(streamOne[0], one.usage, 'streamed, one prompt: the JSON answer\'s usage')
  t.same(streamTwo[0], two.usage, 'streamed, two prompts: the JSON answer\'s usage')
})

t.test('addUsage: details when either side has them, a missing field counts 0, a missing total is prompt + completion', async t => {
  const reasoned = { prompt_tokens: 10, completion_tokens: 7, total_tokens: 17, completion_tokens_details: { reasoning_tokens: 4, text_tokens: 3 } }
  const plain = { prompt_tokens: 5, completion_tokens: 2 }
  const expected = { prompt_tokens: 15, completion_tokens: 9, total_tokens: 24, completion_tokens_details: { reasoning_tokens: 4, text_tokens: 3 } }
  t.same(addUsage(addUsage(null, reasoned), plain), expected, 'reasoned first')
  t.same(addUsage(addUsage(null, plain), reasoned), expected, 'reasoned last: the same')
  t.same(addUsage(null, plain), { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }, 'one answer is given the same shape')
  t.same(addUsage(null, { completion_tokens_details: null, prompt_tokens_details: { cached_tokens: null } } as any),
    { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } }, 'nulls count 0')
  t.equal(addUsage(null, null), null, 'no usage stays none')
  t.same(addUsage(expected, undefined), expected, 'an answer without usage adds nothing')
})

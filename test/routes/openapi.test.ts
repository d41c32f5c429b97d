import t from 'tap'
import { build, postJson, startStack } from '../helper.ts'
import { ANSWERS, EXAMPLES, TAGS } from '../../plugins/openapi.ts'

type Doc = Record<string, any>

/** Every operation of the document, as [METHOD path, operation]. */
const operations = (doc: Doc) => Object.entries(doc.paths as Record<string, Record<string, Doc>>)
  .flatMap(([path, item]) => Object.entries(item).map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation] as const))

/** Follows a local $ref ("#/components/responses/OpenAI400"); undefined when it leads nowhere. */
const resolve = (doc: Doc, ref: string) => ref.replace(/^#\//, '').split('/').reduce<any>((node, key) => node?.[key], doc)

async function documentOf (t: Parameters<typeof build>[0]) {
  const app = await build(t, { GATEWAY_API_KEYS: 'k' })
  return (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc
}

t.test('the OpenAPI document describes every endpoint family from its schemas', async t => {
  const app = await build(t, { GATEWAY_API_KEYS: 'k' })
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200, 'reachable without a client key')
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  for (const path of ['/v1/models', '/v1/models/{model}', '/v1/chat/completions', '/v1/completions', '/health', '/metrics']) {
    t.ok(doc.paths[path], `${path} documented`)
  }
  const chat = doc.paths['/v1/chat/completions'].post.requestBody.content['application/json'].schema
  t.same(chat.required, ['model', 'messages'])
  t.ok(chat.properties.temperature, 'parameters come from the TypeBox schema')

  // The families translated at the edge of the pipeline are documented from their own schemas.
  const body = (path: string) => doc.paths[path]?.post?.requestBody?.content?.['application/json']?.schema
  t.ok(body('/v1/responses')?.properties?.input, 'POST /v1/responses with its input')
  t.ok(doc.paths['/v1/responses/{id}']?.get && doc.paths['/v1/responses/{id}']?.delete, 'GET and DELETE /v1/responses/{id}')
  t.ok(doc.paths['/v1/responses/{id}/input_items']?.get, 'GET /v1/responses/{id}/input_items')
  t.ok(body('/v1/messages')?.required?.includes('max_tokens'), 'POST /v1/messages requires max_tokens, as Anthropic does')
  t.ok(body('/v1/messages/count_tokens'), 'POST /v1/messages/count_tokens')
  t.ok(body('/v1/embeddings')?.properties?.encoding_format, 'POST /v1/embeddings with encoding_format')

  const docs = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
  const spec = await app.inject({ method: 'GET', url: '/docs/json' })
  t.same(spec.json().paths['/v1/chat/completions'] !== undefined, true, 'the page reads the same document')
  const style = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' })
  t.equal(style.statusCode, 200)
  t.match(style.headers['content-type'], /text\/css/)
  const missing = await app.inject({ method: 'GET', url: '/docs/no-such-file' })
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { error: { type: 'invalid_request_error' } }, 'a missing file gets the gateway\'s own 404')
})

t.test('every operation sits in a tag group, with a summary and a description', async t => {
  const doc = await documentOf(t)
  t.same(doc.tags.map((tag: Doc) => tag.name), TAGS.map(tag => tag.name), 'the groups, in the page\'s order')
  const used = new Set<string>()
  for (const [name, operation] of operations(doc)) {
    t.equal(operation.tags?.length, 1, `${name}: one tag, so nothing lands in "default"`)
    t.ok(TAGS.some(tag => tag.name === operation.tags?.[0]), `${name}: a declared tag (${operation.tags?.[0]})`)
    used.add(operation.tags?.[0])
    t.match(operation.summary, /^[A-Z]\S*( \S+)*$/, `${name}: a summary`)
    t.ok(operation.description?.length > 20, `${name}: a description`)
    t.match(operation.operationId, /^[a-z][A-Za-z]+$/, `${name}: an operationId`)
    for (const [status, response] of Object.entries(operation.responses as Record<string, Doc>)) {
      t.not(response.description, 'Default Response', `${name} ${status}: says what it means`)
    }
  }
  t.same([...used].sort(), TAGS.map(tag => tag.name).sort(), 'every group has operations')
  t.notOk(doc.paths['/docs'] ?? doc.paths['/openapi.json'] ?? doc.paths['/api/hello'], 'the page itself and the preconnect stay out')
})

t.test('the model route reads {model}, and a path built from it reaches the model', async t => {
  const { gateway } = await startStack(t, { env: { GATEWAY_API_KEYS: 'k' } })
  const doc = (await gateway.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc
  t.notOk(Object.keys(doc.paths).some(path => path.includes('*')), 'no wildcard left in a path')
  const operation = doc.paths['/v1/models/{model}'].get
  t.same(operation.parameters.map((parameter: Doc) => [parameter.in, parameter.name, parameter.required]), [['path', 'model', true]])
  t.equal(operation.parameters[0].example, 'qwen-plus')
  const headers = { authorization: 'Bearer k' }
  const [first] = (await gateway.inject({ method: 'GET', url: '/v1/models', headers })).json().data
  // Swagger UI encodes the parameter: ids with slashes must survive that.
  for (const id of [first.id, 'Qwen/Qwen3-8B']) {
    const res = await gateway.inject({ method: 'GET', url: '/v1/models/{model}'.replace('{model}', encodeURIComponent(id)), headers })
    if (id === first.id) t.equal(res.json().id, id, `${id} retrieved through the documented path`)
    else t.equal(res.json().error?.param, 'model', `${id}: unknown here, and the 404 names the model, not the route`)
  }
})

t.test('a client key is shown where it is asked for: /v1, not /health or /metrics', async t => {
  const doc = await documentOf(t)
  t.notOk(doc.security, 'no document-wide lock')
  t.same(Object.keys(doc.components.securitySchemes).sort(), ['apiKey', 'bearer'])
  t.equal(doc.components.securitySchemes.apiKey.name, 'x-api-key')
  for (const [name, operation] of operations(doc)) {
    if (name.split(' ')[1].startsWith('/v1/')) t.same(operation.security, [{ bearer: [] }, { apiKey: [] }], `${name}: Bearer or x-api-key`)
    else t.notOk(operation.security, `${name}: no key`)
  }
})

t.test('error responses: the OpenAI envelope per status, Anthropic\'s on /v1/messages', async t => {
  const doc = await documentOf(t)
  const openai = doc.components.schemas.OpenAIError
  t.same(openai.properties.error.required, ['message', 'type', 'param', 'code'])
  t.same(doc.components.schemas.AnthropicError.required, ['type', 'error'])
  const seen = new Set<string>()
  for (const [name, operation] of operations(doc)) {
    const path = name.split(' ')[1]
    if (!path.startsWith('/v1/')) continue
    const anthropic = path.startsWith('/v1/messages')
    for (const status of ['401', '429', '500', anthropic ? '529' : '503']) t.ok(operation.responses[status], `${name}: ${status}`)
    if (operation.requestBody) t.ok(operation.responses['400'] && operation.responses['413'], `${name}: 400 and 413 for a body`)
    for (const [status, response] of Object.entries(operation.responses as Record<string, Doc>)) {
      if (Number(status) < 400) continue
      seen.add(status)
      const target = resolve(doc, response.$ref)
      t.ok(target, `${name} ${status}: ${response.$ref} exists`)
      const json = target?.content?.['application/json']
      t.equal(json?.schema?.$ref, `#/components/schemas/${anthropic ? 'AnthropicError' : 'OpenAIError'}`, `${name} ${status}: its family's envelope`)
      if (anthropic) t.match(json?.example, { type: 'error', error: { type: String, message: String } })
      else t.same(Object.keys(json?.example?.error ?? {}), ['message', 'type', 'param', 'code'], `${name} ${status}: an example in the envelope`)
    }
  }
  t.same([...seen].sort(), ['400', '401', '404', '413', '429', '500', '502', '503', '504', '529'])
  t.ok(doc.paths['/v1/chat/completions'].post.responses['502'] && doc.paths['/v1/chat/completions'].post.responses['504'], 'upstream failures on chat')
  t.notOk(doc.paths['/v1/messages/count_tokens'].post.responses['502'], 'none on an estimate that calls no upstream')

  // The documented shapes are the real ones.
  const app = await build(t, { GATEWAY_API_KEYS: 'k' })
  const unauthorized = (await app.inject({ method: 'GET', url: '/v1/models' })).json()
  const documented = (status: number) => doc.components.responses[`OpenAI${status}`].content['application/json'].example
  t.same(Object.keys(unauthorized.error), openai.properties.error.required, 'a real 401 has the documented fields')
  t.same(unauthorized, documented(401), 'and is the documented example')
  const invalid = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: 'Bearer k' }, payload: { model: 'qwen-plus' } })
  t.equal(invalid.statusCode, 400)
  t.same(Object.keys(invalid.json().error), openai.properties.error.required, 'a real 400 has the documented fields')
  t.same(invalid.json(), documented(400), 'and is the documented example')
  const anthropic = await app.inject({ method: 'POST', url: '/v1/messages', headers: { 'x-api-key': 'k' }, payload: { model: 'qwen-plus' } })
  t.match(anthropic.json(), { type: 'error', error: { type: 'invalid_request_error', message: String } }, 'a real Anthropic 400 has the documented fields')
})

t.test('request examples are real requests, and each one succeeds', async t => {
  const doc = await documentOf(t)
  const bodies = operations(doc).filter(([, operation]) => operation.requestBody?.content?.['application/json'])
  t.ok(bodies.length >= 7)
  for (const [name, operation] of bodies) {
    const example = operation.requestBody.content['application/json'].example
    t.same(example, EXAMPLES[name], `${name}: an example`)
    const text = JSON.stringify(example)
    t.notMatch(text, /additionalProp|"string"|"max_tokens":1[,}]/, `${name}: nothing generated`)
    t.match(example.model, /^(qwen-plus|qwen3-coder-plus|text-embedding-v4)$/, `${name}: a real model id`)
  }

  const { baseURL } = await startStack(t, { env: { GATEWAY_API_KEYS: 'k' } })
  for (const [name, example] of Object.entries(EXAMPLES)) {
    const [, path] = name.split(' ')
    const res = await postJson(`${baseURL}${path.slice('/v1'.length)}`, example, { authorization: 'Bearer k' })
    t.equal(res.status, 200, `${name}: the example answers 200 (${res.status === 200 ? 'ok' : await res.text()})`)
  }
})

/** The fields of `example` the real answer lacks, as paths; arrays compared by their first element. */
function missingFields (example: unknown, real: unknown, path = ''): string[] {
  if (Array.isArray(example)) return example.length > 0 && Array.isArray(real) && real.length > 0 ? missingFields(example[0], real[0], `${path}[0]`) : []
  if (example === null || typeof example !== 'object') return []
  if (real === null || typeof real !== 'object') return [path]
  return Object.entries(example).flatMap(([key, value]) =>
    key in real ? missingFields(value, (real as Record<string, unknown>)[key], `${path}.${key}`) : [`${path}.${key}`])
}

t.test('documented answers are what the gateway answers', async t => {
  const { origin, gateway } = await startStack(t, { env: { GATEWAY_API_KEYS: 'k', DASHSCOPE_API_KEY: 'a,b' } })
  const doc = (await gateway.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc
  const headers = { authorization: 'Bearer k', 'content-type': 'application/json' }
  for (const [name, answers] of Object.entries(ANSWERS)) {
    const [method, template] = name.split(' ')
    const path = template.replace('{model}', 'qwen-plus')
    const example = EXAMPLES[name]
    const res = await fetch(`${origin}${path}`, { method, headers, body: example === undefined ? undefined : JSON.stringify(example) })
    t.equal(res.status, 200, `${name}: 200`)
    const real = await res.json()
    const documented = doc.paths[template][method.toLowerCase()].responses
    for (const [status, answer] of Object.entries(answers)) {
      t.same(documented[status].content['application/json'].example, answer, `${name} ${status}: in the document`)
      if (status === '200') t.same(missingFields(answer, real), [], `${name}: every documented field is in the real answer`)
      else t.same(missingFields(answer, real), [], `${name} ${status}: the same fields as a 200`)
    }
  }
})

t.test('/metrics is documented as it answers, and the page links /openapi.json', async t => {
  const app = await build(t, { GATEWAY_API_KEYS: 'k' })
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc
  const [type] = Object.keys(doc.paths['/metrics'].get.responses['200'].content)
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(metrics.statusCode, 200)
  t.equal(metrics.headers['content-type']?.toString().split(';')[0], type.split(';')[0], 'the documented media type')
  t.match(doc.info.description, '[/openapi.json](/openapi.json)', 'the document linked from the page\'s header')
})

import t from 'tap'
import { build } from '../helper.ts'

t.test('the OpenAPI document describes every endpoint family from its schemas', async t => {
  const app = await build(t, { GATEWAY_API_KEYS: 'k' })
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200, 'reachable without a client key')
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  for (const path of ['/v1/models', '/v1/models/{*}', '/v1/chat/completions', '/v1/completions', '/health']) {
    t.ok(doc.paths[path] ?? doc.paths[path.replace('{*}', '*')], `${path} documented`)
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
})

import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import type { FastifySchema, RouteOptions } from 'fastify'
import {
  internalError, invalidClientKey, modelNotFound, upstreamTimeout, upstreamUnreachable, type ErrorBody, type GatewayError
} from '../src/errors.ts'
import { errorTypeFor } from '../src/adapters/messages/errors.ts'
import { VERSION } from '../src/version.ts'
import { lazyDocsPage } from './docs-page.ts'

// The routes carry their own tags, summary and description. Everything else the page needs is added here, to the
// document only: the route schemas Fastify validates and serializes with are never touched, so no answer can lose
// a field to a documentation change.

/** The tag groups, in the order the page shows them. */
export const TAGS = [
  { name: 'Models', description: 'The models this gateway serves.' },
  { name: 'Chat Completions', description: 'OpenAI Chat Completions: what most OpenAI-compatible clients call.' },
  { name: 'Completions', description: 'OpenAI legacy text completions, over the chat API.' },
  { name: 'Responses', description: 'The OpenAI Responses API (Codex, the Agents SDK), with stored responses.' },
  { name: 'Anthropic Messages', description: 'The Anthropic Messages API (Claude Code, the Anthropic SDKs). Errors in Anthropic\'s envelope.' },
  { name: 'Embeddings', description: 'OpenAI embeddings.' },
  { name: 'Health', description: 'For people, dashboards and orchestrators. No client key needed.' },
  { name: 'Metrics', description: 'Prometheus metrics, for operators. No client key needed.' }
]

/** Routes registered as a wildcard (model ids carry slashes), and the name their one parameter has in the document. */
const WILDCARDS: Record<string, { name: string, description: string, example: string }> = {
  '/v1/models/*': { name: 'model', description: 'The model id, slashes included (`Qwen/Qwen3-8B`)', example: 'qwen-plus' }
}

/** Request bodies that succeed as they are against a DashScope upstream: the page's "Try it out" starts from them. */
export const EXAMPLES: Record<string, unknown> = {
  'POST /v1/chat/completions': {
    model: 'qwen-plus',
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Say hello in one short sentence.' }
    ],
    max_tokens: 64
  },
  'POST /v1/completions': { model: 'qwen-plus', prompt: 'Write a haiku about the sea.', max_tokens: 64 },
  'POST /v1/responses': { model: 'qwen-plus', input: 'Say hello in one short sentence.', max_output_tokens: 64 },
  'POST /v1/responses/input_tokens': { model: 'qwen-plus', input: 'Say hello in one short sentence.' },
  'POST /v1/messages': {
    model: 'qwen3-coder-plus',
    max_tokens: 1024,
    messages: [{ role: 'user', content: 'Write a TypeScript function that reverses a string.' }]
  },
  'POST /v1/messages/count_tokens': {
    model: 'qwen3-coder-plus',
    messages: [{ role: 'user', content: 'Write a TypeScript function that reverses a string.' }]
  },
  'POST /v1/embeddings': { model: 'text-embedding-v4', input: ['The quick brown fox', 'jumps over the lazy dog'], dimensions: 1024 }
}

const MODEL = { id: 'qwen-plus', object: 'model', created: 1752741600, owned_by: 'system' }

/** Answers as the gateway gives them, in place of the "string" and 0 Swagger UI would make up from the schemas. */
export const ANSWERS: Record<string, Record<string, unknown>> = {
  'GET /v1/models': { 200: { object: 'list', data: [MODEL, { ...MODEL, id: 'qwen3-coder-plus' }] } },
  'GET /v1/models/{model}': { 200: MODEL },
  'POST /v1/chat/completions': {
    200: {
      id: 'chatcmpl-51891cff-8a78-45fd-b9c9-81dfa72c9797',
      object: 'chat.completion',
      created: 1796054788,
      model: 'qwen-plus',
      choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: 'Hello! How can I help you today?' } }],
      usage: { prompt_tokens: 24, completion_tokens: 9, total_tokens: 33 }
    }
  },
  'POST /v1/messages': {
    200: {
      id: 'msg_0123456789abcdef',
      type: 'message',
      role: 'assistant',
      model: 'qwen3-coder-plus',
      content: [{ type: 'text', text: 'const reverse = (s: string) => [...s].reverse().join(\'\')' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 17, output_tokens: 16 }
    }
  },
  'POST /v1/messages/count_tokens': { 200: { input_tokens: 17 } },
  'GET /health': {
    200: {
      status: 'ok',
      version: VERSION,
      uptime_seconds: 3600,
      upstream: { host: 'dashscope-intl.aliyuncs.com', api_keys: 2 },
      upstreams: [{
        name: 'dashscope',
        host: 'dashscope-intl.aliyuncs.com',
        keys: [
          { key: 'key-1', state: 'healthy', reason: null, retry_in_seconds: 0, models: [] },
          { key: 'key-2', state: 'cooling', reason: 'rate_limited', retry_in_seconds: 12, failures: 1, models: [] }
        ]
      }],
      shared_state: { store: 'memory', available: true },
      in_flight: { requests: 3, streams: 1 },
      active_sessions: 5
    }
  },
  'GET /health/ready': {
    200: { status: 'ready', checks: { upstream_keys: true, shared_state: true } },
    503: { status: 'not_ready', checks: { upstream_keys: false, shared_state: true } }
  }
}

/** What each operation's own statuses mean; null drops one (the endpoints that always refuse). Replaces "Default Response". */
const OUTCOMES: Record<string, Record<string, string | null>> = {
  'GET /health': { 200: 'The health report: the short one without a client key when keys are configured' },
  'GET /health/live': { 200: 'The process is up' },
  'GET /health/ready': { 200: 'Ready for traffic', 503: 'Not ready: `checks` says which check failed' },
  'GET /v1/models': { 200: 'The model list' },
  'GET /v1/models/{model}': { 200: 'The model' },
  'POST /v1/chat/completions': { 200: 'A `chat.completion`; with `stream: true`, server-sent events of `chat.completion.chunk` ending in `data: [DONE]`' },
  'POST /v1/completions': { 200: 'A `text_completion`; with `stream: true`, server-sent events ending in `data: [DONE]`' },
  'POST /v1/responses': { 200: 'A `response`; with `stream: true`, the Responses event stream (`response.created` to `response.completed`)' },
  'POST /v1/responses/input_tokens': { 200: '`{"object": "response.input_tokens", "input_tokens": N}`, an estimate' },
  'GET /v1/responses/{id}': { 200: 'The stored response' },
  'DELETE /v1/responses/{id}': { 200: '`{"id": "resp_…", "object": "response", "deleted": true}`' },
  'GET /v1/responses/{id}/input_items': { 200: 'A page of input items (`object: "list"`, `first_id`, `last_id`, `has_more`)' },
  'POST /v1/responses/{id}/cancel': { 200: null },
  'POST /v1/responses/compact': { 200: null },
  'POST /v1/messages': { 200: 'A `message`; with `stream: true`, Anthropic\'s event stream (`message_start` to `message_stop`)' },
  'POST /v1/messages/count_tokens': { 200: 'The estimate' },
  'POST /v1/embeddings': { 200: 'A list of `embedding` objects, in input order, and the usage' }
}

const HOST = 'dashscope-intl.aliyuncs.com'
const envelope = (error: GatewayError) => error.toJSON().error

/** Each error status: when it happens, and a body as the gateway sends it (from src/errors.ts where it has one). */
const ERRORS: Record<string, { description: string, example: ErrorBody }> = {
  400: { description: 'The request is invalid; `param` names the field when there is one.', example: { message: 'Missing required parameter: \'messages\'.', type: 'invalid_request_error', param: 'messages', code: 'missing_required_parameter' } },
  401: { description: 'No client key, or not one of GATEWAY_API_KEYS (only when GATEWAY_API_KEYS is set).', example: envelope(invalidClientKey()) },
  404: { description: 'An unknown model, or no stored response with this id for this client key.', example: envelope(modelNotFound('qwen-unknown')) },
  413: { description: 'The body is larger than BODY_LIMIT.', example: { message: 'The request body is larger than the gateway\'s limit of 33554432 bytes (BODY_LIMIT).', type: 'invalid_request_error', param: null, code: 'request_too_large' } },
  429: { description: 'This client key\'s request or token budget is spent, or the upstream rate-limited every key; retry after the `retry-after` header.', example: { message: 'Rate limit reached for key-1: 60 requests per minute, 60 used, and this request needs 1 request (a legacy completion counts one per prompt). Retry in 12 s.', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
  500: { description: 'An error inside the gateway; it is logged.', example: envelope(internalError()) },
  502: { description: 'The upstream could not be reached, broke off, or sent an answer the gateway could not read.', example: envelope(upstreamUnreachable(HOST, null)) },
  503: { description: 'The gateway is overloaded (load shedding), shutting down, or its response store is unavailable; retry.', example: { message: 'The gateway is overloaded; retry in a few seconds.', type: 'server_error', param: null, code: 'overloaded' } },
  504: { description: 'The upstream did not answer in time.', example: envelope(upstreamTimeout(HOST, 'headers', null)) }
}

/** The statuses documented for the Anthropic routes, where an overloaded gateway or upstream (503) answers 529. */
const ANTHROPIC_STATUSES = [400, 401, 404, 413, 429, 500, 502, 529, 504]

const OPENAI_ERROR = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type', 'param', 'code'],
      properties: {
        message: { type: 'string', description: 'What went wrong, for people' },
        type: { type: 'string', description: 'invalid_request_error, authentication_error, not_found_error, rate_limit_error or server_error' },
        param: { type: ['string', 'null'], description: 'The request field at fault, if any' },
        code: { type: ['string', 'null'], description: 'A stable code for programs (model_not_found, upstream_timeout ...)' }
      }
    }
  }
}

const ANTHROPIC_ERROR = {
  type: 'object',
  required: ['type', 'error'],
  properties: {
    type: { const: 'error' },
    error: {
      type: 'object',
      required: ['type', 'message'],
      properties: {
        type: { type: 'string', description: 'invalid_request_error, authentication_error, not_found_error, request_too_large, rate_limit_error, api_error, timeout_error or overloaded_error' },
        message: { type: 'string' }
      }
    },
    request_id: { type: 'string' }
  }
}

/** The error statuses an operation can answer: every /v1 one passes the key check, the limits and load shedding. */
function errorStatuses (method: string, path: string, operation: Operation): string[] {
  const statuses = ['401', '429', '500', '503']
  // A body or a query to refuse, or an endpoint that always refuses.
  const refuses = operation.requestBody !== undefined || operation.parameters?.some(parameter => parameter.in === 'query') ||
    /\/(cancel|compact)$/.test(path)
  if (refuses) statuses.push('400')
  if (operation.requestBody !== undefined) statuses.push('413')
  // An id or a model that may not exist.
  if (path.includes('{') || (operation.requestBody !== undefined && !path.endsWith('/count_tokens'))) statuses.push('404')
  // Only these call an upstream; token counts are estimates, stored responses come from the store.
  if (method === 'post' && ['/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/messages', '/v1/embeddings'].includes(path)) statuses.push('502', '504')
  const anthropic = path.startsWith('/v1/messages')
  return statuses.map(status => anthropic && status === '503' ? '529' : status).sort()
}

interface Operation {
  tags?: string[]
  summary?: string
  requestBody?: { content?: Record<string, { example?: unknown }> }
  parameters?: Array<{ name: string, in: string, example?: unknown }>
  responses?: Record<string, unknown>
  security?: Array<Record<string, string[]>>
}

type Document = Record<string, any>

/** Adds what the page needs to the generated document: tags, error responses, examples, /metrics. */
export function describe (document: Document): Document {
  const doc = structuredClone(document)
  doc.tags = TAGS
  doc.components ??= {}
  doc.components.schemas = { ...doc.components.schemas, OpenAIError: OPENAI_ERROR, AnthropicError: ANTHROPIC_ERROR }
  doc.components.responses = { ...doc.components.responses, ...errorResponses() }

  for (const [path, item] of Object.entries(doc.paths ?? {}) as Array<[string, Record<string, Operation>]>) {
    for (const [method, operation] of Object.entries(item)) {
      const key = `${method.toUpperCase()} ${path}`
      for (const [status, description] of Object.entries(OUTCOMES[key] ?? {})) {
        const response = operation.responses?.[status] as { description?: string } | undefined
        if (description === null) delete operation.responses?.[status]
        else if (response) response.description = description
      }
      for (const [status, answer] of Object.entries(ANSWERS[key] ?? {})) {
        const response = operation.responses?.[status] as { content?: Record<string, { example?: unknown }> } | undefined
        if (response === undefined) continue
        response.content ??= { 'application/json': {} }
        response.content['application/json'].example = answer
      }
      const example = EXAMPLES[key]
      const json = operation.requestBody?.content?.['application/json']
      if (example !== undefined && json) json.example = example
      if (!path.startsWith('/v1/')) continue
      operation.security = [{ bearer: [] }, { apiKey: [] }]
      const prefix = path.startsWith('/v1/messages') ? 'Anthropic' : 'OpenAI'
      for (const status of errorStatuses(method, path, operation)) {
        operation.responses = { ...operation.responses, [status]: { $ref: `#/components/responses/${prefix}${status}` } }
      }
    }
  }

  doc.paths['/metrics'] = {
    get: {
      tags: ['Metrics'],
      summary: 'Prometheus metrics',
      description: 'The Prometheus text format: requests, latencies, tokens, upstream keys and more. For operators: behind deploy/nginx.conf only loopback and private networks may read it.',
      operationId: 'getMetrics',
      responses: {
        200: {
          description: 'Metrics in the Prometheus text format',
          content: { 'text/plain; version=0.0.4': { schema: { type: 'string' }, example: '# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\n' } }
        }
      }
    }
  }
  return doc
}

function errorResponses (): Record<string, unknown> {
  const responses: Record<string, unknown> = {}
  for (const [status, error] of Object.entries(ERRORS)) {
    responses[`OpenAI${status}`] = {
      description: error.description,
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/OpenAIError' },
          example: { error: error.example }
        }
      }
    }
  }
  for (const status of ANTHROPIC_STATUSES) {
    const type = errorTypeFor(status)
    const error = ERRORS[status === 529 ? '503' : status]
    responses[`Anthropic${status}`] = {
      description: error.description,
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/AnthropicError' },
          example: { type: 'error', error: { type, message: error.example.message }, request_id: '9f0b2479-c009-401f-ad8d-35dd52975816' }
        }
      }
    }
  }
  return responses
}

/** Per route, before the document is built: the wildcard's real name, and an operationId from the handler. */
export function transformRoute ({ schema, url, route }: { schema: FastifySchema, url: string, route: RouteOptions }) {
  const docs: FastifySchema & { operationId?: string } = { ...schema }
  const handlerName = (route.handler as { name?: string }).name
  if (handlerName) docs.operationId ??= handlerName
  const wildcard = WILDCARDS[url]
  if (wildcard === undefined) return { schema: docs, url }
  docs.params = {
    type: 'object',
    required: [wildcard.name],
    properties: { [wildcard.name]: { type: 'string', description: wildcard.description, examples: [wildcard.example] } }
  }
  return { schema: docs, url: url.replace(/\*$/, `:${wildcard.name}`) }
}

/**
 * An OpenAPI document built from the routes' TypeBox schemas, at /openapi.json, with a browsable page at /docs.
 * Registered before the routes so that it sees them all.
 */
export default fp(async function openapi (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Qwen Gateway',
        version: VERSION,
        description: 'The OpenAI (Chat Completions, Responses, embeddings) and Anthropic Messages APIs over Qwen models ' +
          '(DashScope, vLLM, SGLang, Ollama, llama.cpp).\n\n' +
          'The OpenAPI document: [/openapi.json](/openapi.json). Requests under /v1 need one of GATEWAY_API_KEYS, when it is set, ' +
          'as `Authorization: Bearer <key>` or `x-api-key: <key>` (Authorize, then Try it out). Errors come in the OpenAI envelope ' +
          '`{"error":{"message","type","param","code"}}`, and in Anthropic\'s `{"type":"error","error":{"type","message"}}` on /v1/messages.'
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'One of GATEWAY_API_KEYS' },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'One of GATEWAY_API_KEYS, as Anthropic clients send it' }
        }
      }
    },
    transform: transformRoute,
    transformObject: ({ openapiObject }: { openapiObject: Document }) => describe(openapiObject)
  } as Parameters<typeof swagger>[1])
  fastify.get('/openapi.json', { schema: { hide: true } }, async function openapiDocument () {
    return fastify.swagger()
  })
  const docsPage = lazyDocsPage(() => fastify.swagger(), '/docs')
  fastify.get('/docs', { schema: { hide: true } }, docsPage)
  fastify.get('/docs/*', { schema: { hide: true } }, docsPage)
}, { name: 'openapi' })

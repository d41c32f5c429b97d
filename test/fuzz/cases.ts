// The fuzz cases: each one is generated from (seed, index) alone, so any case can be replayed on its own
// (FUZZ_SEED=... FUZZ_ONLY=index). A case says what it sends and what answers are acceptable.

import { effectivePath } from './check.ts'
import { deepJson, jsonBuffer, raw, randomJson, toJson, unknownKey, withRawFields } from './json.ts'
import { Rng } from './random.ts'

export interface FuzzContext {
  /** A valid client key (GATEWAY_API_KEYS). */
  key: string
  bodyLimit: number
  models: string[]
  /** host:port of the gateway, for Host headers and absolute-form targets. */
  authority: string
}

/**
 * 'reject': the request is invalid, so the answer must be a 4xx (with `status`, one of those).
 * 'any': valid or debatable; any answer below 500 will do. Every 4xx must be the error envelope either way.
 */
export type Expectation = 'reject' | 'any'

export interface FuzzCase {
  id: string
  category: string
  label: string
  method: string
  /** The request target exactly as sent (origin-form, or absolute-form for some cases). */
  path: string
  /** Flat [name, value, name, value ...] list, so duplicates can be sent. */
  headers: string[]
  body?: Buffer
  /** Send the body with Transfer-Encoding: chunked, in pieces. */
  chunked?: boolean
  /** Bytes written to a plain TCP socket instead of a node:http request (for what node:http refuses to send). */
  raw?: Buffer[]
  /** Half-close the raw socket after writing. */
  halfClose?: boolean
  expect: Expectation
  status?: number[]
  /** Whether the request carries a valid client key. */
  authorized: boolean
  /** The server may close the connection without an answer (then it must just stay alive). */
  mayDrop?: boolean
}

type Draft = Omit<FuzzCase, 'id' | 'category'>

const CHAT = '/v1/chat/completions'
const COMPLETIONS = '/v1/completions'
// The families translated at the edge of the pipeline take the same hostile bodies (Anthropic's in its own envelope).
const RESPONSES = '/v1/responses'
const MESSAGES = '/v1/messages'
const EMBEDDINGS = '/v1/embeddings'
const EVERY_API = [CHAT, COMPLETIONS, RESPONSES, MESSAGES, EMBEDDINGS]
const JSON_TYPE = 'application/json'
const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function']

// Values of the wrong JSON type. null is left out: most optional fields accept it (as OpenAI's do).
const NOT_STRING: unknown[] = [0, 1.5, -1, true, false, [], ['x'], {}, { a: 1 }]
const NOT_NUMBER: unknown[] = ['1', '0.5', 'NaN', 'Infinity', '-Infinity', '', true, false, [], [1], {}, { n: 1 }]
const NOT_BOOL: unknown[] = ['true', 'false', 0, 1, '', 'yes', [], [true], {}]
const NOT_OBJECT: unknown[] = ['x', '{}', 0, 1, true, [], [{}]]
const NOT_ARRAY: unknown[] = ['x', '[]', 0, true, {}, { 0: 'a' }]

const authHeader = (ctx: FuzzContext) => ['authorization', `Bearer ${ctx.key}`]

function validMessage (rng: Rng): Record<string, unknown> {
  const role = rng.weighted([[6, 'user'], [2, 'system'], [1, 'assistant'], [1, 'developer']] as const)
  if (role === 'assistant' && rng.chance(0.3)) {
    return { role, content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] }
  }
  if (rng.chance(0.2)) return { role, content: [{ type: 'text', text: rng.text(rng.int(1, 20)) }] }
  return { role, content: rng.text(rng.int(0, 60)) }
}

/** A chat request the gateway must accept; optional parameters are all within OpenAI's (and the simulator's) ranges. */
function validChat (rng: Rng, ctx: FuzzContext): Record<string, unknown> {
  const messages = [validMessage(rng)]
  while (rng.chance(0.3) && messages.length < 5) messages.push(validMessage(rng))
  messages.push({ role: 'user', content: rng.text(rng.int(1, 30)) })
  const body: Record<string, unknown> = { model: rng.pick(ctx.models), messages }
  const optional: Array<[string, () => unknown]> = [
    ['temperature', () => rng.int(0, 200) / 100],
    ['top_p', () => rng.int(0, 100) / 100],
    ['n', () => rng.int(1, 4)],
    ['max_tokens', () => rng.int(1, 1000)],
    ['max_completion_tokens', () => rng.int(1, 1000)],
    ['presence_penalty', () => rng.int(-200, 200) / 100],
    ['frequency_penalty', () => rng.int(-200, 200) / 100],
    ['seed', () => rng.int(-1000, 1000)],
    ['stop', () => rng.chance(0.5) ? 'END' : ['a', 'b']],
    ['stream', () => rng.chance(0.5)],
    ['stream_options', () => rng.chance(0.5) ? null : { include_usage: rng.chance(0.5) }],
    ['user', () => rng.text(10)],
    ['logprobs', () => false],
    ['tools', () => [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }]],
    ['tool_choice', () => rng.pick(['auto', 'none', { type: 'function', function: { name: 'get_weather' } }])],
    ['response_format', () => ({ type: rng.pick(['text', 'json_object']) })],
    ['metadata', () => ({ a: 'b' })],
    ['store', () => false],
    ['parallel_tool_calls', () => rng.chance(0.5)]
  ]
  for (const [name, make] of optional) if (rng.chance(0.12)) body[name] = make()
  return body
}

function validCompletion (rng: Rng, ctx: FuzzContext): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: rng.pick(ctx.models),
    prompt: rng.chance(0.8) ? rng.text(rng.int(1, 40)) : [rng.text(5), rng.text(5)]
  }
  if (rng.chance(0.2)) body.stream = rng.chance(0.5)
  if (rng.chance(0.1)) body.max_tokens = rng.int(1, 100)
  if (rng.chance(0.1)) body.echo = false
  if (rng.chance(0.1)) body.best_of = 1
  return body
}

function addUnknownFields (rng: Rng, body: Record<string, unknown>, count: number) {
  for (let i = 0; i < count; i++) body[unknownKey(rng)] = randomJson(rng, rng.int(0, 5))
}

const post = (path: string, body: Buffer | undefined, headers: string[], contentType: string | null = JSON_TYPE): Pick<Draft, 'method' | 'path' | 'headers' | 'body'> => ({
  method: 'POST',
  path,
  headers: contentType === null ? headers : [...headers, 'content-type', contentType],
  body
})

// ---------------------------------------------------------------------------------------------------------------
// Mistyped and out-of-range fields: structurally valid JSON, one to three fields wrong. Always a 400.

type Body = Record<string, any>
type Mutation = [string, (body: Body, rng: Rng) => void]

const set = (field: string, values: unknown[]): Mutation => [field, (body, rng) => { body[field] = rng.pick(values) }]

function messageMutation (name: string, mutate: (message: Body, rng: Rng) => void): Mutation {
  return [`messages[i].${name}`, (body, rng) => {
    // An earlier mutation may have replaced the messages already; the body is invalid either way.
    const messages = body.messages as unknown
    if (!Array.isArray(messages) || messages.length === 0) return
    const index = rng.int(0, messages.length - 1)
    const message = messages[index] as unknown
    messages[index] = typeof message === 'object' && message !== null ? { ...message } : {}
    mutate(messages[index], rng)
  }]
}

const SHARED_MUTATIONS: Mutation[] = [
  ['model', (body, rng) => {
    if (rng.chance(0.2)) delete body.model
    else body.model = rng.pick([...NOT_STRING, null])
  }],
  set('temperature', [...NOT_NUMBER, -0.01, 2.01, 3, 100, -1e10, raw('1e400'), raw('-1e400')]),
  set('top_p', [...NOT_NUMBER, -0.01, 1.01, 2, raw('1e400')]),
  set('n', [...NOT_NUMBER, 0, -1, 129, 1.5, 1000]),
  set('max_tokens', [...NOT_NUMBER, 0, -1, 1.5, raw('-1e400')]),
  set('presence_penalty', [...NOT_NUMBER, -2.01, 2.01, 1e9, -1e9]),
  set('frequency_penalty', [...NOT_NUMBER, -2.01, 2.01, 1e9, -1e9]),
  set('seed', [...NOT_NUMBER, 1.5, -0.5]),
  set('stop', [1, true, {}, [], ['a', 'b', 'c', 'd', 'e'], [1], [null], ['a', 2], [['a']]]),
  set('stream', NOT_BOOL),
  set('stream_options', [...NOT_OBJECT, { include_usage: 'yes' }, { include_usage: 1 }, { include_usage: null }]),
  set('user', [...NOT_STRING, null])
]

const CHAT_MUTATIONS: Mutation[] = [
  ...SHARED_MUTATIONS,
  ['messages', (body, rng) => {
    if (rng.chance(0.15)) delete body.messages
    else body.messages = rng.pick([...NOT_ARRAY, null, [], ['x'], [1], [null], [[]], [true]])
  }],
  messageMutation('(whole)', (message, rng) => {
    for (const key of Object.keys(message)) delete message[key]
    if (rng.chance(0.5)) message.content = 'no role'
  }),
  messageMutation('role', (message, rng) => {
    if (rng.chance(0.15)) delete message.role
    else message.role = rng.pick(['robot', '', 'USER', 'User', 'user ', ' user', 'assistant\u0000', 1, null, true, [], {}, ['user']])
  }),
  messageMutation('content', (message, rng) => {
    message.content = rng.pick([5, 0, true, {}, { text: 'x' }, [1], ['x'], [null], [{}], [{ text: 'x' }], [{ type: 1 }], [{ type: null }], [{ type: [] }], [[]]])
  }),
  messageMutation('name', (message, rng) => { message.name = rng.pick([...NOT_STRING, null]) }),
  messageMutation('tool_calls', (message, rng) => {
    message.tool_calls = rng.pick([
      'x', 1, true, {}, [1], [null], [{}], [{ function: {} }], [{ function: 'f' }],
      [{ function: { name: 1, arguments: '{}' } }], [{ function: { name: 'f', arguments: {} } }],
      [{ function: { name: 'f' } }], [{ id: 1, function: { name: 'f', arguments: '{}' } }],
      [{ type: 2, function: { name: 'f', arguments: '{}' } }]
    ])
  }),
  messageMutation('tool_call_id', (message, rng) => { message.tool_call_id = rng.pick([...NOT_STRING, null]) }),
  set('max_completion_tokens', [...NOT_NUMBER, 0, -5, 2.5]),
  set('logprobs', NOT_BOOL),
  set('top_logprobs', [...NOT_NUMBER, -1, 21, 2.5]),
  set('tools', [
    'x', 1, {}, null, true, [1], [null], ['f'], [{}], [{ type: 1 }], [{ type: 'function', function: {} }],
    [{ type: 'function', function: { name: '' } }], [{ type: 'function', function: { name: 1 } }],
    [{ type: 'function', function: 'f' }], [{ type: 'function', function: { name: 'f', parameters: 'x' } }],
    [{ type: 'function', function: { name: 'f', parameters: [] } }], [{ type: 'function', function: { name: 'f', strict: 'yes' } }],
    [{ type: 'function', function: { name: 'f', description: 1 } }]
  ]),
  set('tool_choice', [1, 0, true, false, [], ['auto'], 1.5]),
  set('parallel_tool_calls', NOT_BOOL),
  set('response_format', [...NOT_OBJECT, null, {}, { type: 1 }, { type: null }]),
  set('metadata', NOT_OBJECT),
  set('store', NOT_BOOL)
]

const COMPLETION_MUTATIONS: Mutation[] = [
  ...SHARED_MUTATIONS,
  ['prompt', (body, rng) => {
    if (rng.chance(0.15)) delete body.prompt
    else body.prompt = rng.pick([null, 1, true, {}, [], [1], [null], [['a']], [[1, 2]], [1, 2, 3], Array.from({ length: 129 }, () => 'a')])
  }],
  set('echo', [true, 'true', 1]),
  set('suffix', ['tail', 1, true, [], {}]),
  set('best_of', [2, 20, 21, -1, 1.5, 'x', true]),
  set('logprobs', [0, 1, 5, 6, -1, 'x', true]),
  set('logit_bias', NOT_OBJECT)
]

function mistyped (rng: Rng, ctx: FuzzContext): Draft {
  const chat = rng.chance(0.7)
  const body: Body = chat ? validChat(rng, ctx) : validCompletion(rng, ctx)
  const table = chat ? CHAT_MUTATIONS : COMPLETION_MUTATIONS
  const labels: string[] = []
  if (rng.chance(0.05)) {
    const whole = rng.pick([[], [body], 'x', 1, null, true, raw('1e400')])
    return { label: `${chat ? 'chat' : 'completions'} body is ${toJson(whole).slice(0, 30)}`, ...post(chat ? CHAT : COMPLETIONS, jsonBuffer(whole), authHeader(ctx)), expect: 'reject', status: [400], authorized: true }
  }
  const count = rng.weighted([[6, 1], [2, 2], [1, 3]] as const)
  for (let i = 0; i < count; i++) {
    const [name, mutate] = rng.pick(table)
    mutate(body, rng)
    labels.push(name)
  }
  if (rng.chance(0.3)) addUnknownFields(rng, body, rng.int(1, 3))
  return {
    label: `${chat ? 'chat' : 'completions'} with wrong ${labels.join(', ')}`,
    ...post(chat ? CHAT : COMPLETIONS, jsonBuffer(body), authHeader(ctx)),
    expect: 'reject',
    status: [400],
    authorized: true
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Valid requests with unknown fields of every JSON shape: they go upstream and may well succeed.

function unknownFields (rng: Rng, ctx: FuzzContext): Draft {
  const chat = rng.chance(0.7)
  const body: Body = chat ? validChat(rng, ctx) : validCompletion(rng, ctx)
  addUnknownFields(rng, body, rng.int(1, 6))
  const extra: string[] = []
  if (rng.chance(0.2)) extra.push(rng.pick(['"__proto__":{"polluted":true}', '"constructor":{"prototype":{"polluted":true}}', '"__proto__":null', '"hasOwnProperty":1', '"toString":"x"']))
  if (rng.chance(0.1)) extra.push(`"enable_thinking":${rng.pick(['true', '"yes"', '1', 'null'])}`, `"top_k":${rng.pick(['5', '"x"', '-1'])}`)
  return {
    label: `${chat ? 'chat' : 'completions'} with unknown fields ${Object.keys(body).filter(key => key.startsWith('x_')).length + extra.length}`,
    ...post(chat ? CHAT : COMPLETIONS, Buffer.from(withRawFields(body, extra)), authHeader(ctx)),
    expect: 'any',
    authorized: true
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Truncated JSON, and JSON followed by junk.

function truncated (rng: Rng, ctx: FuzzContext): Draft {
  const chat = rng.chance(0.7)
  const body: Body = chat ? validChat(rng, ctx) : validCompletion(rng, ctx)
  if (rng.chance(0.3)) addUnknownFields(rng, body, rng.int(1, 4))
  const text = Buffer.from(toJson(body))
  const path = chat ? CHAT : COMPLETIONS
  if (rng.chance(0.25)) {
    const tail = rng.pick(['x', ',', '}', ']', '{}', toJson(body), 'null', '\u0000', ' garbage', '//comment', '\ufeff'])
    return { label: `JSON followed by ${JSON.stringify(tail.slice(0, 10))}`, ...post(path, Buffer.concat([text, Buffer.from(tail)]), authHeader(ctx)), expect: 'reject', status: [400], authorized: true }
  }
  const cut = rng.chance(0.1) ? rng.int(0, 2) : rng.int(0, text.length - 1)
  return { label: `JSON cut at ${cut} of ${text.length}`, ...post(path, text.subarray(0, cut), authHeader(ctx)), expect: 'reject', status: [400], authorized: true }
}

// ---------------------------------------------------------------------------------------------------------------
// Random bytes, as JSON or as anything else.

const ANY_TYPES = [JSON_TYPE, JSON_TYPE, 'text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', null]

function garbage (rng: Rng, ctx: FuzzContext): Draft {
  const length = rng.weighted([[2, rng.int(0, 16)], [5, rng.int(17, 1024)], [2, rng.int(1025, 16384)]] as const)
  const bytes = rng.chance(0.3) ? Buffer.from(rng.text(length)) : rng.bytes(length)
  const path = rng.pick(EVERY_API)
  const contentType = rng.pick(ANY_TYPES)
  return { label: `${length} random bytes as ${contentType ?? 'no content type'}`, ...post(path, bytes, authHeader(ctx), contentType), expect: 'reject', authorized: true }
}

// ---------------------------------------------------------------------------------------------------------------
// Encodings: invalid UTF-8, UTF-16, BOMs, escapes, control characters, duplicate keys, odd numbers.

const BAD_UTF8 = [[0xff], [0xfe, 0xfe], [0x80], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc3]]

function encoding (rng: Rng, ctx: FuzzContext): Draft {
  const chat = rng.chance(0.7)
  const path = chat ? CHAT : COMPLETIONS
  const body: Body = chat ? { model: rng.pick(ctx.models), messages: [{ role: 'user', content: '@@@' }] } : { model: rng.pick(ctx.models), prompt: '@@@' }
  const text = toJson(body)
  const [before, after] = text.split('@@@')
  const bad = Buffer.from(rng.pick(BAD_UTF8))
  const headers = authHeader(ctx)
  const kind = rng.int(0, 10)
  switch (kind) {
    case 0:
      return { label: `invalid UTF-8 ${bad.toString('hex')} inside a string`, ...post(path, Buffer.concat([Buffer.from(before), bad, Buffer.from('text'), bad, Buffer.from(after)]), headers), expect: 'any', authorized: true }
    case 1: {
      const at = rng.int(0, before.length)
      return { label: `invalid UTF-8 ${bad.toString('hex')} outside strings`, ...post(path, Buffer.concat([Buffer.from(text.slice(0, at === 0 ? 0 : 1)), bad, Buffer.from(text.slice(at === 0 ? 0 : 1))]), headers), expect: 'reject', status: [400], authorized: true }
    }
    case 2: {
      const encoded = Buffer.from((rng.chance(0.5) ? '\ufeff' : '') + text.replace('@@@', 'hi'), 'utf16le')
      if (rng.chance(0.5)) encoded.swap16()
      return { label: 'UTF-16 body', ...post(path, encoded, headers, rng.pick(['application/json; charset=utf-16', 'application/json; charset=utf-16le', JSON_TYPE])), expect: 'reject', status: [400], authorized: true }
    }
    case 3:
      return { label: 'UTF-8 BOM before the JSON', ...post(path, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text.replace('@@@', 'hi'))]), headers), expect: 'any', authorized: true }
    case 4: {
      const escape = rng.pick(['\\ud800', '\\udfff', '\\ud83d\\ude00', '\\u0000', '\\uffff', '\\ufffe', '\\u202e', '\\/', '\\b\\f'])
      const inModel = rng.chance(0.3)
      const source = inModel ? text.replace(`"${body.model}"`, `"${escape}"`) : text
      return { label: `escape ${escape} in ${inModel ? 'model' : 'content'}`, ...post(path, Buffer.from(source.replace('@@@', escape)), headers), expect: 'any', authorized: true }
    }
    case 5: {
      const control = rng.pick(['\u0000', '\u0001', '\n', '\r', '\t', '\u001f', '\u007f'])
      // DEL (0x7f) is allowed unescaped in JSON strings; the others are not.
      return { label: `raw control character ${control.charCodeAt(0)} in a string`, ...post(path, Buffer.from(text.replace('@@@', `a${control}b`)), headers), expect: control === '\u007f' ? 'any' : 'reject', status: control === '\u007f' ? undefined : [400], authorized: true }
    }
    case 6: {
      // Duplicate keys: JSON.parse keeps the last one.
      const lastWrong = rng.chance(0.5)
      const source = lastWrong ? `${text.slice(0, -1)},"model":${toJson(rng.pick([7, null, [], {}]))}}` : `{"model":${toJson(rng.pick([7, null, [], {}]))},${text.slice(1)}`
      return { label: `duplicate "model" key, ${lastWrong ? 'last' : 'first'} one wrong`, ...post(path, Buffer.from(source.replace('@@@', 'hi')), headers), expect: lastWrong ? 'reject' : 'any', status: lastWrong ? [400] : undefined, authorized: true }
    }
    case 7: {
      const number = rng.pick(['01', '+1', '.5', '1.', '0x10', 'NaN', 'Infinity', '-', '1e', '--1', '1_000'])
      return { label: `invalid JSON number ${number}`, ...post(path, Buffer.from(`${text.slice(0, -1)},"temperature":${number}}`.replace('@@@', 'hi')), headers), expect: 'reject', status: [400], authorized: true }
    }
    case 8: {
      const number = rng.pick(['1e400', '-0', '1e-400', '0.0000000000000000000000001', '1.0', '2E0', '1.999999999999999999999'])
      return { label: `unusual but valid JSON number ${number} as temperature`, ...post(path, Buffer.from(`${text.slice(0, -1)},"temperature":${number}}`.replace('@@@', 'hi')), headers), expect: 'any', authorized: true }
    }
    case 9: {
      const syntax = rng.pick(["{'model':'qwen-plus'}", '{model:"qwen-plus"}', '{"model":"qwen-plus",/*c*/"messages":[]}', '{"model":"qwen-plus",}', '{"a":1 "b":2}', '[1,]', '{"a":}', '{:1}', '{"a"1}', '"\\x41"', '"\\u12"', '{"a":"\\q"}', 'nul', 'tru', '{"a":undefined}'])
      return { label: `JSON syntax error ${syntax.slice(0, 20)}`, ...post(path, Buffer.from(syntax), headers), expect: 'reject', status: [400], authorized: true }
    }
    default: {
      const latin1 = Buffer.from(text.replace('@@@', 'caf\u00e9 na\u00efve'), 'latin1')
      return { label: 'latin-1 body declared as such', ...post(path, latin1, headers, rng.pick(['application/json; charset=iso-8859-1', 'application/json; charset=latin1', JSON_TYPE])), expect: 'any', authorized: true }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Deep nesting: within BODY_LIMIT (the parser must cope) and beyond it (413 before parsing).

function deep (rng: Rng, ctx: FuzzContext): Draft {
  const headers = authHeader(ctx)
  // '[' and ']' cost two bytes a level, objects five: stay below the limit unless over-limit is wanted.
  const room = ctx.bodyLimit - 400
  const shape = rng.pick(['array', 'object', 'mixed'] as const)
  const perLevel = shape === 'array' ? 2 : 6
  const depth = rng.int(1000, Math.floor(room / perLevel))
  const nested = deepJson(depth, shape, rng.pick(['1', 'null', '"x"', '[]', '{}']), rng)
  const kind = rng.pick(['root', 'chat-field', 'chat-stream-field', 'completions-field', 'content-part', 'response-format', 'messages', 'family-field', 'unbalanced', 'over-limit'] as const)
  const label = `${shape} nested ${depth} deep, ${kind}`
  switch (kind) {
    case 'root':
      return { label, ...post(rng.pick(EVERY_API), Buffer.from(nested), headers), expect: 'reject', status: [400], authorized: true }
    case 'family-field': {
      const [path, body] = rng.pick([
        [RESPONSES, { model: rng.pick(ctx.models), input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi', extra: '@@@' }] }], stream: rng.chance(0.5) }],
        [MESSAGES, { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', extra: '@@@' }] }], stream: rng.chance(0.5) }],
        [EMBEDDINGS, { model: 'text-embedding-v4', input: 'hi', extra: '@@@' }]
      ] as const)
      return { label: `${label} in ${path}`, ...post(path, Buffer.from(toJson(body).replace('"@@@"', nested)), headers), expect: 'any', authorized: true }
    }
    case 'chat-field':
      return { label, ...post(CHAT, Buffer.from(withRawFields(validChatPlain(rng, ctx), [`"x_deep":${nested}`])), headers), expect: 'any', authorized: true }
    case 'chat-stream-field': {
      const body = { ...validChatPlain(rng, ctx), stream: true, stream_options: rng.pick([{}, { include_usage: false }, null]) }
      return { label, ...post(CHAT, Buffer.from(withRawFields(body, [`"x_deep":${nested}`])), headers), expect: 'any', authorized: true }
    }
    case 'completions-field':
      return { label, ...post(COMPLETIONS, Buffer.from(withRawFields({ model: rng.pick(ctx.models), prompt: 'hi', stream: rng.chance(0.5) }, [`"x_deep":${nested}`])), headers), expect: 'any', authorized: true }
    case 'content-part': {
      const text = toJson({ model: rng.pick(ctx.models), messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', extra: '@@@' }] }] })
      return { label, ...post(CHAT, Buffer.from(text.replace('"@@@"', nested)), headers), expect: 'any', authorized: true }
    }
    case 'response-format': {
      const text = toJson({ ...validChatPlain(rng, ctx), response_format: { type: 'json_schema', json_schema: '@@@' } })
      return { label, ...post(CHAT, Buffer.from(text.replace('"@@@"', nested)), headers), expect: 'any', authorized: true }
    }
    case 'messages':
      return { label, ...post(CHAT, Buffer.from(`{"model":"${rng.pick(ctx.models)}","messages":${deepJson(depth, 'array')}}`), headers), expect: 'reject', status: [400], authorized: true }
    case 'unbalanced':
      return { label, ...post(rng.pick(EVERY_API), Buffer.from(`{"model":"qwen-plus","x":${'['.repeat(depth)}`), headers), expect: 'reject', status: [400], authorized: true }
    default: {
      const over = rng.int(ctx.bodyLimit + 1, ctx.bodyLimit * 2)
      const levels = Math.ceil(over / 2)
      return { label: `array nested ${levels} deep (${levels * 2} bytes, over BODY_LIMIT)`, ...post(rng.pick(EVERY_API), Buffer.from(deepJson(levels, 'array', '')), headers), expect: 'reject', status: [413], authorized: true }
    }
  }
}

/** A non-streaming chat request without optional fields, to build on. */
function validChatPlain (rng: Rng, ctx: FuzzContext): Body {
  return { model: rng.pick(ctx.models), messages: [{ role: 'user', content: rng.text(rng.int(1, 20)) }] }
}

// ---------------------------------------------------------------------------------------------------------------
// Sizes around BODY_LIMIT, and bodies with thousands of items.

function oversized (rng: Rng, ctx: FuzzContext): Draft {
  const headers = authHeader(ctx)
  const kind = rng.pick(['just-under', 'just-over', 'chunked-over', 'far-over', 'long-model', 'get-with-body'] as const)
  const padded = (size: number) => {
    const base = Buffer.from(toJson({ model: rng.pick(ctx.models), messages: [{ role: 'user', content: '' }] }))
    const fill = Math.max(0, size - base.length)
    const text = toJson({ model: rng.pick(ctx.models), messages: [{ role: 'user', content: 'x'.repeat(fill) }] })
    return Buffer.from(text)
  }
  switch (kind) {
    case 'just-under': {
      const size = ctx.bodyLimit - rng.int(0, 64)
      return { label: `${size}-byte chat (limit ${ctx.bodyLimit})`, ...post(CHAT, padded(size), headers), expect: 'any', authorized: true }
    }
    case 'just-over': {
      const size = ctx.bodyLimit + rng.int(1, 2048)
      return { label: `${size}-byte chat (limit ${ctx.bodyLimit})`, ...post(rng.pick([CHAT, COMPLETIONS]), padded(size), headers), expect: 'reject', status: [413], authorized: true }
    }
    case 'chunked-over': {
      const size = ctx.bodyLimit + rng.int(1, 8192)
      return { label: `${size}-byte chat, chunked`, ...post(CHAT, padded(size), headers), chunked: true, expect: 'reject', status: [413], authorized: true }
    }
    case 'far-over': {
      const size = rng.int(4, 16) * ctx.bodyLimit
      return { label: `${size}-byte chat (${size / ctx.bodyLimit} x the limit)`, ...post(CHAT, padded(size), headers), chunked: rng.chance(0.3), expect: 'reject', status: [413], authorized: true, mayDrop: true }
    }
    case 'long-model': {
      const length = rng.int(1000, ctx.bodyLimit - 200)
      return { label: `model id of ${length} characters`, ...post(rng.pick([CHAT, COMPLETIONS]), jsonBuffer({ model: rng.text(length), messages: [{ role: 'user', content: 'hi' }], prompt: 'hi' }), headers), expect: 'any', authorized: true }
    }
    default: {
      const path = rng.pick(['/health', '/v1/models', '/metrics', '/openapi.json'])
      return { label: `GET ${path} with a ${ctx.bodyLimit * 2}-byte body`, method: 'GET', path, headers: [...headers, 'content-type', JSON_TYPE], body: padded(ctx.bodyLimit * 2), expect: 'any', authorized: true, mayDrop: true }
    }
  }
}

function manyItems (rng: Rng, ctx: FuzzContext): Draft {
  const headers = authHeader(ctx)
  const kind = rng.pick(['messages', 'messages-one-bad', 'stop', 'prompts', 'tools', 'keys', 'content-parts'] as const)
  let body: Body
  let expect: Expectation = 'any'
  let status: number[] | undefined
  let path = CHAT
  const count = rng.int(200, 3000)
  switch (kind) {
    case 'messages':
    case 'messages-one-bad': {
      const messages: Body[] = Array.from({ length: count }, (_, i) => ({ role: ROLES[i % 4], content: 'm' + i }))
      messages.push({ role: 'user', content: 'last' })
      if (kind === 'messages-one-bad') {
        const index = rng.int(0, messages.length - 1)
        messages[index] = rng.pick([{ role: 'robot', content: 'x' }, { content: 'x' }, { role: 'user', content: 5 }])
        expect = 'reject'
        status = [400]
      }
      body = { model: rng.pick(ctx.models), messages }
      break
    }
    case 'stop':
      body = { ...validChatPlain(rng, ctx), stop: Array.from({ length: count }, (_, i) => 's' + i) }
      expect = 'reject'
      status = [400]
      break
    case 'prompts':
      path = COMPLETIONS
      body = { model: rng.pick(ctx.models), prompt: Array.from({ length: Math.max(129, count) }, (_, i) => 'p' + i) }
      expect = 'reject'
      status = [400]
      break
    case 'tools':
      body = { ...validChatPlain(rng, ctx), tools: Array.from({ length: count }, (_, i) => ({ type: 'function', function: { name: 'f' + i } })) }
      break
    case 'keys': {
      body = validChatPlain(rng, ctx)
      for (let i = 0; i < count; i++) body['x_k' + i] = i
      break
    }
    default:
      body = { model: rng.pick(ctx.models), messages: [{ role: 'user', content: Array.from({ length: count }, (_, i) => ({ type: 'text', text: 't' + i })) }] }
  }
  const buffer = jsonBuffer(body)
  if (buffer.length > ctx.bodyLimit) {
    expect = 'reject'
    status = [413]
  }
  return { label: `${count} ${kind} (${buffer.length} bytes)`, ...post(path, buffer, headers), expect, status, authorized: true }
}

// ---------------------------------------------------------------------------------------------------------------
// Content types.

const JSON_LIKE = ['application/json; charset=utf-8', 'APPLICATION/JSON', 'Application/Json; Charset=UTF-8', 'application/json;charset=utf-16', 'application/json; charset="utf-8"', 'application/json; foo=bar', 'application/json ;', 'application/json;;', 'application/json; charset=' + 'x'.repeat(2000)]
const NOT_JSON = ['text/plain', 'text/html', 'multipart/form-data; boundary=----fuzz', 'application/x-www-form-urlencoded', 'application/octet-stream', 'application/xml', 'image/png', 'text/event-stream']
const ODD_TYPES = ['application/jsonx', 'application/json-patch+json', 'application/vnd.api+json', 'text/json', 'json', '*/*', 'application/*', 'application/', '/json', '%%%', ';', ',', 'application/json, text/plain', 'text/plain, application/json', 'a'.repeat(4000), 'appl\u00efcation/json', '', ' ', 'application/json\t']

function contentType (rng: Rng, ctx: FuzzContext): Draft {
  const chat = rng.chance(0.7)
  const body = jsonBuffer(chat ? validChatPlain(rng, ctx) : validCompletion(rng, ctx))
  const path = chat ? CHAT : COMPLETIONS
  const headers = authHeader(ctx)
  const kind = rng.int(0, 5)
  if (kind <= 1) {
    const type = rng.pick(JSON_LIKE)
    return { label: `content type ${type.slice(0, 40)}`, ...post(path, body, headers, type), expect: 'any', authorized: true }
  }
  if (kind === 2) {
    const type = rng.pick(NOT_JSON)
    return { label: `content type ${type}`, ...post(path, body, headers, type), expect: 'reject', authorized: true }
  }
  if (kind === 3) {
    const type = rng.pick(ODD_TYPES)
    return { label: `content type ${JSON.stringify(type.slice(0, 40))}`, ...post(path, body, headers, type), expect: 'any', authorized: true }
  }
  if (kind === 4) {
    const variant = rng.pick(['none', 'empty-json', 'multipart', 'form', 'gzip', 'two-types'] as const)
    switch (variant) {
      case 'none': return { label: 'body without a content type', ...post(path, body, headers, null), expect: 'reject', authorized: true }
      case 'empty-json': return { label: 'empty body as JSON', ...post(path, Buffer.alloc(0), headers), expect: 'reject', status: [400], authorized: true }
      case 'multipart': {
        const multipart = Buffer.from(`------fuzz\r\nContent-Disposition: form-data; name="body"\r\nContent-Type: application/json\r\n\r\n${body}\r\n------fuzz--\r\n`)
        return { label: 'multipart body', ...post(path, multipart, headers, 'multipart/form-data; boundary=----fuzz'), expect: 'reject', authorized: true }
      }
      case 'form': return { label: 'form body', ...post(path, Buffer.from('model=qwen-plus&messages[0][role]=user&messages[0][content]=hi&prompt=hi'), headers, 'application/x-www-form-urlencoded'), expect: 'reject', authorized: true }
      case 'gzip': {
        const gzipped = rng.chance(0.5)
        const payload = gzipped ? Buffer.from([0x1f, 0x8b, 0x08, 0x00, ...rng.bytes(40)]) : body
        return { label: `content-encoding gzip, ${gzipped ? 'gzip-looking' : 'plain'} body`, ...post(path, payload, [...headers, 'content-encoding', rng.pick(['gzip', 'br', 'deflate', 'x-unknown'])]), expect: gzipped ? 'reject' : 'any', authorized: true }
      }
      default: return { label: 'two content-type headers', ...post(path, body, [...headers, 'content-type', 'text/plain']), expect: 'any', authorized: true }
    }
  }
  // GET and other endpoints with content types they never read.
  const target = rng.pick(['/health', '/v1/models', '/metrics', '/openapi.json', '/v1/models/qwen-plus'])
  return { label: `GET ${target} with a JSON body`, method: 'GET', path: target, headers: [...headers, 'content-type', rng.pick([JSON_TYPE, 'text/plain', '%%%'])], body: Buffer.from(rng.pick(['{', '{}', 'garbage'])), expect: 'any', authorized: true }
}

// ---------------------------------------------------------------------------------------------------------------
// Headers: sizes, counts, duplicates, odd values.

const GET_TARGETS = ['/health', '/metrics', '/openapi.json', '/v1/models', '/v1/models/qwen-plus', '/docs', '/docs/json']

function anyEndpoint (rng: Rng, ctx: FuzzContext): { method: string, path: string, body?: Buffer, headers: string[] } {
  if (rng.chance(0.55)) return { method: 'GET', path: rng.pick(GET_TARGETS), headers: [] }
  if (rng.chance(0.7)) return { method: 'POST', path: CHAT, body: jsonBuffer(validChatPlain(rng, ctx)), headers: ['content-type', JSON_TYPE] }
  return { method: 'POST', path: COMPLETIONS, body: jsonBuffer(validCompletion(rng, ctx)), headers: ['content-type', JSON_TYPE] }
}

function headers (rng: Rng, ctx: FuzzContext): Draft {
  const target = anyEndpoint(rng, ctx)
  const base = [...authHeader(ctx), ...target.headers]
  const kind = rng.pick(['big-value', 'over-limit', 'many', 'duplicates', 'request-id', 'accept', 'host', 'forwarded', 'upgrade', 'misc'] as const)
  let extra: string[]
  let mayDrop = false
  let label: string
  switch (kind) {
    case 'big-value': {
      const size = rng.int(1000, 9000)
      extra = [rng.pick(['x-junk', 'user-agent', 'cookie', 'accept', 'x-request-id', 'referer']), rng.string(size, 'abcdefghijklmnopqrstuvwxyz0123456789;=, ')]
      label = `${extra[0]} of ${size} bytes`
      break
    }
    case 'over-limit': {
      const size = rng.int(17000, 80000)
      extra = ['x-junk', 'a'.repeat(size)]
      label = `header of ${size} bytes (over Node's 16 KiB)`
      mayDrop = true
      break
    }
    case 'many': {
      const count = rng.int(50, 1800)
      extra = []
      let size = 0
      for (let i = 0; i < count; i++) {
        extra.push(`x-h${i}`, String(i))
        size += `x-h${i}: ${i}\r\n`.length
      }
      label = `${count} headers (${size} bytes)`
      // Near Node's 16 KiB header limit (which counts more than these bytes) the answer is a 431 and a closed connection.
      mayDrop = size > 11000
      break
    }
    case 'duplicates': {
      const [name, value] = rng.pick([['content-type', 'text/plain'], ['authorization', 'Bearer nope'], ['x-api-key', 'nope'], ['content-length', ''], ['host', 'other.example'], ['x-request-id', 'dup-id'], ['accept', '*/*'], ['transfer-encoding', 'chunked']])
      const length = target.body?.length ?? 0
      // A second, different Content-Length or a Transfer-Encoding next to one makes the request unparseable.
      extra = name === 'content-length' ? [name, String(length), name, String(length + 1)] : [name, value]
      label = `a second ${name}${value ? `: ${value}` : ''}`
      mayDrop = ['content-length', 'transfer-encoding', 'host'].includes(name)
      break
    }
    case 'request-id': {
      const value = rng.pick(['a'.repeat(200), 'a'.repeat(129), 'id with spaces', '../../etc/passwd', '{"json":1}', '\u00fcml\u00e4ut', '<script>', 'ok-id_1.2:3@x', '', ' ', 'a\tb', '%0d%0aSet-Cookie: x=1'])
      extra = ['x-request-id', value]
      label = `x-request-id ${JSON.stringify(value.slice(0, 20))}`
      break
    }
    case 'accept':
      extra = rng.pick([['accept', 'text/event-stream'], ['accept', 'application/xml'], ['accept', '*/*;q=0'], ['accept', '%%%'], ['accept-encoding', 'gzip, br, deflate'], ['accept-encoding', 'identity;q=0, *;q=0'], ['accept-encoding', 'x'.repeat(500)], ['accept-language', 'zz'], ['accept-charset', 'utf-16']])
      label = `${extra[0]}: ${extra[1].slice(0, 30)}`
      break
    case 'host':
      extra = ['host', rng.pick(['evil.example', 'localhost:99999', '[::1]', '', 'a'.repeat(1000), '127.0.0.1:0', 'x y', 'h\u00f6st'])]
      label = `host ${JSON.stringify(extra[1].slice(0, 20))}`
      break
    case 'forwarded':
      extra = rng.pick([['x-forwarded-for', '1.2.3.4, , garbage, ::1'], ['x-forwarded-proto', 'gopher'], ['x-forwarded-host', 'evil'], ['forwarded', 'for=;;;'], ['x-real-ip', '999.999.999.999']])
      label = `${extra[0]}: ${extra[1]}`
      break
    case 'upgrade':
      extra = ['connection', 'Upgrade', 'upgrade', rng.pick(['websocket', 'h2c', 'garbage'])]
      label = `upgrade to ${extra[3]}`
      mayDrop = true
      break
    default:
      extra = rng.pick([['expect', '100-continue'], ['te', 'trailers'], ['range', 'bytes=0-10'], ['if-none-match', '*'], ['if-modified-since', 'yesterday'], ['origin', 'null'], ['cache-control', 'no-cache'], ['pragma', 'x'], ['x-http-method-override', 'DELETE'], ['x-api-key', 'wrong-but-ignored']])
      label = `${extra[0]}: ${extra[1]}`
  }
  return { label: `${target.method} ${target.path}, ${label}`, method: target.method, path: target.path, headers: [...base, ...extra], body: target.body, expect: 'any', authorized: true, mayDrop }
}

// ---------------------------------------------------------------------------------------------------------------
// Client keys: missing, wrong, in odd places; a /v1 request without a valid key is always a 401.

function auth (rng: Rng, ctx: FuzzContext): Draft {
  const target = rng.chance(0.8)
    ? anyEndpoint(rng, ctx)
    : { method: 'GET', path: rng.pick(['/v1/nope', '/v1/models/none', '/v1/chat/completions', '/v1/models?x=1']), headers: [] as string[], body: undefined }
  const key = ctx.key
  const accepted: string[][] = [['authorization', `Bearer ${key}`], ['authorization', `bearer ${key}`], ['authorization', `BEARER   ${key}  `], ['authorization', `Bearer\t${key}`], ['x-api-key', key]]
  const refused: string[][] = [
    [], ['authorization', 'Bearer wrong'], ['authorization', 'Bearer'], ['authorization', 'Bearer '], ['authorization', `Basic ${Buffer.from(`user:${key}`).toString('base64')}`],
    ['authorization', key], ['authorization', `Bearer ${key}x`], ['authorization', `Bearer x${key}`], ['authorization', `Bearer ${key.toUpperCase()}`],
    ['authorization', `Token ${key}`], ['authorization', `Bearer ${'k'.repeat(rng.int(100, 8000))}`], ['authorization', `Bearer ${key}, Bearer ${key}`],
    ['authorization', `Bearer ${key.slice(0, -1)}`], ['x-api-key', 'wrong'], ['x-api-key', ''], ['x-api-key', key, 'x-api-key', key],
    ['authorization', 'Bearer wrong', 'x-api-key', key], ['authorization', '', 'x-api-key', 'nope'], ['authorization', 'Bearer \u00e9\u00e8']
  ]
  const ok = rng.chance(0.3)
  const credentials = ok ? rng.pick(accepted) : rng.pick(refused)
  let path = target.path
  let disguised = false
  if (rng.chance(0.25)) {
    // The same route spelt with percent-escapes (/%761/models is /v1/models to the router).
    const [route, search] = path.split('?')
    path = [...route].map((char, i) => i > 0 && /[\w-]/.test(char) && rng.chance(0.3) ? `%${char.charCodeAt(0).toString(16).padStart(2, '0')}` : char).join('') + (search === undefined ? '' : `?${search}`)
    disguised = path !== target.path
  }
  if (rng.chance(0.2)) path += (path.includes('?') ? '&' : '?') + rng.pick([`api_key=${key}`, `key=${key}`, `authorization=Bearer%20${key}`])
  const v1 = effectivePath(path).startsWith('/v1/')
  return {
    label: `${target.method} ${path.replace(key, '<key>')} with ${credentials.length === 0 ? 'no key' : credentials.map((item, i) => i % 2 === 0 ? item : JSON.stringify(item.replace(key, '<key>').slice(0, 40))).join(' ')}`,
    method: target.method,
    path,
    headers: [...credentials, ...target.headers],
    body: target.body,
    expect: ok || !v1 ? 'any' : 'reject',
    status: ok || !v1 || disguised ? undefined : [401],
    authorized: ok
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Query strings.

function query (rng: Rng, ctx: FuzzContext): Draft {
  const target = anyEndpoint(rng, ctx)
  const kind = rng.pick(['long', 'many', 'junk', 'junk', 'encoded-text', 'over-limit'] as const)
  let q: string
  switch (kind) {
    case 'long': q = 'q=' + rng.string(rng.int(1000, 9000)); break
    case 'many': q = Array.from({ length: rng.int(100, 1200) }, (_, i) => `p${i}=${i}`).join('&'); break
    case 'junk': q = rng.pick(['%', '%zz', '%00', '%ff%fe', '&&&&', '===', 'a=1&a=2&a=3', 'a[]=1&a[]=2', 'a[b][c]=1', '__proto__[x]=1', '__proto__=1', 'constructor[prototype][x]=1', 'toString=1&hasOwnProperty=2', 'model=qwen-plus&stream=true', '?', '??', ';', 'api-version=2024-02-01', 'x=%E0%A4%A', '%2e%2e%2f', 'a=' + '%'.repeat(50), 'stream=true&n=1000']); break
    case 'encoded-text': q = 'x=' + encodeURIComponent(rng.text(rng.int(1, 200))); break
    default: q = 'q=' + 'a'.repeat(rng.int(17000, 30000))
  }
  return {
    label: `${target.method} ${target.path}?${kind === 'long' || kind === 'many' ? `(${q.length} chars)` : kind === 'over-limit' ? `(${q.length} chars, over Node's 16 KiB)` : q.slice(0, 40)}`,
    method: target.method,
    path: `${target.path}${target.path.includes('?') ? '&' : '?'}${q}`,
    headers: [...authHeader(ctx), ...target.headers],
    body: target.body,
    expect: 'any',
    authorized: true,
    mayDrop: kind === 'over-limit'
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Paths: junk model ids, dot segments, encodings, near-miss routes, absolute-form targets.

const MODEL_IDS = ['%00', '..%2f', '..%2F..%2F..%2Fetc%2Fpasswd', '%2e%2e', '..', '.', '*', ':id', '%20', '%09', 'qwen-plus%00', 'qwen-plus/', 'Qwen/Qwen3-8B', 'qwen-plus%2F..', '%F0%9F%98%80', '%E4%B8%AD%E6%96%87', '%ff', '%C0%AF', '%ED%A0%80', '%zz', '%', '%%', 'qwen-plus?x', 'qwen-plus#x', 'QWEN-PLUS', 'qwen-plus;x=1', '%5Cwindows', 'a+b', '~', '%C3%A9']

function paths (rng: Rng, ctx: FuzzContext): Draft {
  const kind = rng.pick(['model-id', 'model-id', 'long-model-id', 'near-miss', 'docs', 'random'] as const)
  let path: string
  switch (kind) {
    case 'model-id': path = '/v1/models/' + rng.pick(MODEL_IDS); break
    case 'long-model-id': path = '/v1/models/' + rng.string(rng.int(100, 8000), 'abcdefghijklmnopqrstuvwxyz0123456789-._~') + (rng.chance(0.3) ? '/' + rng.string(50) : ''); break
    case 'near-miss': path = rng.pick([
      '/v1/models/', '/v1/models//', '/v1//models', '/V1/models', '/v1/Models', '/v1/chat/completions/', '/v1/chat/completions/x', '/v1/chat', '/v1/chat/', '/v1/',
      '/v1', '/', '/v2/models', '/v1/completions%00', '/v1/models%2Fqwen-plus', '/v1/chat%2Fcompletions', '/v1/./models', '/v1/models/..', '/v1/../health',
      '/health/', '/health/..', '/health%00', '/metrics/', '/metrics/x', '/openapi.json/', '/openapi.yaml', '/favicon.ico', '/.env', '/.git/config',
      '/robots.txt', '/v1/engines', '/v1/embeddings', '/v1/files', '/v1/models/qwen-plus/extra', '/%2e%2e/%2e%2e/etc/passwd', '/\u00e9', '/%E2%80%AE'
    ]); break
    case 'docs': path = rng.pick(['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/index.html', '/docs/static/swagger-ui.css', '/docs/static/../../package.json', '/docs/static/%2e%2e/%2e%2e/package.json', '/docs/static/..%2f..%2fpackage.json', '/docs/static/' + rng.string(20), '/docs/static/%00', '/docs/uiConfig', '/docs/initOAuth', '/docs/static/' + 'a'.repeat(3000)]); break
    default: path = '/' + Array.from({ length: rng.int(1, 6) }, () => rng.chance(0.2) ? '%' + rng.bytes(1).toString('hex') : rng.string(rng.int(0, 12), 'abcdefghijklmnopqrstuvwxyz0123456789-._~!$&\'()*+,;=:@')).join('/')
  }
  const isPost = rng.chance(0.25)
  return {
    label: `${isPost ? 'POST' : 'GET'} ${path.slice(0, 80)}`,
    method: isPost ? 'POST' : 'GET',
    path,
    headers: [...authHeader(ctx), ...(isPost ? ['content-type', JSON_TYPE] : [])],
    body: isPost ? jsonBuffer(validChatPlain(rng, ctx)) : undefined,
    expect: 'any',
    authorized: true
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Methods: every endpoint with every method.

const ROUTES: Array<[string, string]> = [['GET', '/v1/models'], ['GET', '/v1/models/qwen-plus'], ['POST', CHAT], ['POST', COMPLETIONS], ['GET', '/health'], ['GET', '/metrics'], ['GET', '/openapi.json'], ['GET', '/docs'], ['GET', '/docs/json']]
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'SEARCH', 'LOCK', 'MKCOL', 'COPY', 'PURGE', 'REPORT', 'QUERY']

function methods (rng: Rng, ctx: FuzzContext): Draft {
  const [routeMethod, path] = rng.pick(ROUTES)
  const method = rng.pick(METHODS)
  const withBody = method !== 'HEAD' && rng.chance(0.5)
  const body = withBody ? jsonBuffer(path === COMPLETIONS ? validCompletion(rng, ctx) : validChatPlain(rng, ctx)) : undefined
  const matches = method === routeMethod || (method === 'HEAD' && routeMethod === 'GET')
  const extra = rng.chance(0.15) ? ['origin', 'https://evil.example', 'access-control-request-method', 'POST'] : []
  return {
    label: `${method} ${path}${withBody ? ' with a body' : ''}`,
    method,
    path,
    headers: [...authHeader(ctx), ...(withBody ? ['content-type', JSON_TYPE] : []), ...extra],
    body,
    // A POST route without a body is invalid; a GET route ignores one.
    expect: matches && (routeMethod === 'GET' || withBody) ? 'any' : 'reject',
    authorized: true
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Raw HTTP/1.1 that node:http would refuse to send: framing errors, bad syntax, smuggling shapes.

function protocol (rng: Rng, ctx: FuzzContext): Draft {
  const host = `Host: ${ctx.authority}\r\n`
  const key = `Authorization: Bearer ${ctx.key}\r\n`
  // ASCII only: the request is written as latin-1, so string lengths are byte lengths.
  const body = toJson({ model: rng.pick(ctx.models), messages: [{ role: 'user', content: rng.string(rng.int(1, 60), 'abcdefghij KLMNOP 0123456789.,!?') }] })
  const json = 'Content-Type: application/json\r\n'
  const kind = rng.int(0, 24)
  let label: string
  let text: string
  let path = CHAT
  let halfClose = false
  let authorized = true
  switch (kind) {
    case 0: label = 'two different Content-Length headers'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Content-Length: ${body.length}\r\nContent-Length: ${body.length + 1}\r\nConnection: close\r\n\r\n${body}`; break
    case 1: label = 'Content-Length and Transfer-Encoding'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`; break
    case 2: label = 'invalid chunk size'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${rng.pick(['zz', '-1', 'ffffffffffffffffffff', '1;' + 'x'.repeat(5000), ' 5'])}\r\n${body}\r\n0\r\n\r\n`; break
    case 3: label = 'odd Transfer-Encoding'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Transfer-Encoding: ${rng.pick(['chunked, identity', 'gzip', 'xchunked', 'chunked\u000b', 'identity'])}\r\nConnection: close\r\n\r\n${body}`; break
    case 4: label = 'invalid header name'; text = `GET /health HTTP/1.1\r\n${host}${rng.pick(['Bad Header: x', 'x\u0001y: z', ': novalue', '(x): y', 'x\u00ff: y'])}\r\nConnection: close\r\n\r\n`; break
    case 5: label = 'header line without a colon'; text = `GET /v1/models HTTP/1.1\r\n${host}${key}just-a-line\r\nConnection: close\r\n\r\n`; break
    case 6: label = 'obsolete line folding'; text = `GET /v1/models HTTP/1.1\r\n${host}${key}X-Folded: a\r\n  b\r\nConnection: close\r\n\r\n`; break
    case 7: label = 'bare LF line endings'; text = `GET /health HTTP/1.1\n${host.trimEnd()}\nConnection: close\n\n`; break
    case 8: label = 'control character in the target'; path = '/health'; text = `GET /he${rng.pick(['\u0000', '\u0001', '\u007f', ' x', '\t'])}alth HTTP/1.1\r\n${host}Connection: close\r\n\r\n`; break
    case 9: label = 'unknown method'; path = '/health'; text = `${rng.pick(['FOO', 'get', 'G3T', 'GET\u0000', 'BREW', 'PRI'])} /health HTTP/1.1\r\n${host}Connection: close\r\n\r\n`; break
    case 10: label = 'CONNECT'; path = '/health'; text = `CONNECT ${ctx.authority} HTTP/1.1\r\n${host}\r\n`; break
    case 11: label = 'HTTP/2 preface'; path = '/'; text = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'; break
    case 12: label = 'HTTP/1.0 without Host'; path = '/health'; text = `GET ${rng.pick(['/health', '/v1/models'])} HTTP/1.0\r\n${key}\r\n`; break
    case 13: label = 'HTTP/1.1 without Host'; path = '/health'; text = `GET /health HTTP/1.1\r\n${key}Connection: close\r\n\r\n`; break
    case 14: label = 'header section over 16 KiB'; path = '/health'; text = `GET /health HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(rng.int(17000, 40000))}\r\nConnection: close\r\n\r\n`; break
    case 15: label = 'body shorter than Content-Length, then half-close'; halfClose = true; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Content-Length: ${body.length + rng.int(1, 1000)}\r\n\r\n${body}`; break
    case 16: label = 'random bytes instead of a request'; path = '/'; text = rng.bytes(rng.int(1, 2000)).toString('latin1') + '\r\n\r\n'; break
    case 17: {
      const target = rng.pick(['/v1/models', '/v1/models/qwen-plus', CHAT, COMPLETIONS])
      const absolute = `${rng.pick(['http', 'HTTP', 'https'])}://${rng.pick([ctx.authority, 'evil.example', 'user:pw@x'])}${target}`
      authorized = rng.chance(0.3)
      label = `absolute-form target ${absolute} ${authorized ? 'with' : 'without'} a key`
      path = absolute
      const payload = target === COMPLETIONS ? toJson({ model: 'qwen-plus', prompt: 'hi' }) : body
      text = target.startsWith('/v1/models')
        ? `GET ${absolute} HTTP/1.1\r\n${host}${authorized ? key : ''}Connection: close\r\n\r\n`
        : `POST ${absolute} HTTP/1.1\r\n${host}${authorized ? key : ''}${json}Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`
      break
    }
    case 18: label = 'unknown Expect'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Expect: ${rng.pick(['nonsense', '200-ok', '100-continue, x'])}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`; break
    case 19: label = 'invalid Content-Length'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Content-Length: ${rng.pick(['-1', 'abc', '1e3', '0x10', '99999999999999999999999', '5, 5', ' '])}\r\nConnection: close\r\n\r\n${body}`; break
    case 20: label = 'request line over 16 KiB'; path = '/health'; text = `GET /health?${'q'.repeat(rng.int(17000, 30000))} HTTP/1.1\r\n${host}Connection: close\r\n\r\n`; break
    case 21: label = 'pipelined: a valid request then junk'; path = '/health'; text = `GET /health HTTP/1.1\r\n${host}\r\nGARBAGE\r\n\r\n`; break
    case 22: label = 'odd HTTP version'; path = '/health'; text = `GET /health ${rng.pick(['HTTP/9.9', 'HTTP/1.1x', 'HTTP/1', 'HTTP/0.9', 'http/1.1', 'HTTP/1.01'])}\r\n${host}Connection: close\r\n\r\n`; break
    case 23: label = 'chunked body with trailers'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\nX-Trailer: 1\r\n\r\n`; break
    default: label = 'pipelined: two requests, the second one smuggled in the body'; text = `POST ${CHAT} HTTP/1.1\r\n${host}${key}${json}Content-Length: ${body.length}\r\n\r\n${body}GET /v1/models HTTP/1.1\r\n${host}Connection: close\r\n\r\n`
  }
  const method = /^[A-Z]+/.exec(text)?.[0] ?? '?'
  return { label, method, path, headers: [], raw: [Buffer.from(text, 'latin1')], halfClose, expect: 'any', authorized, mayDrop: true }
}

// ---------------------------------------------------------------------------------------------------------------

type Generator = (rng: Rng, ctx: FuzzContext) => Draft

export const CATEGORIES: Array<[number, string, Generator]> = [
  [22, 'mistyped', mistyped],
  [7, 'unknown-fields', unknownFields],
  [8, 'truncated', truncated],
  [5, 'garbage', garbage],
  [6, 'encoding', encoding],
  [5, 'deep-nesting', deep],
  [5, 'oversized', oversized],
  [3, 'many-items', manyItems],
  [7, 'content-type', contentType],
  [7, 'headers', headers],
  [6, 'auth', auth],
  [6, 'query', query],
  [7, 'paths', paths],
  [6, 'methods', methods],
  [5, 'protocol', protocol]
]

const STRIP_KEY = (headers: string[]) => {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i].toLowerCase()
    if (name !== 'authorization' && name !== 'x-api-key') out.push(headers[i], headers[i + 1])
  }
  return out
}

/** Case `index` of the run with `seed`: the same pair always gives the same request. */
export function generateCase (seed: number, index: number, ctx: FuzzContext): FuzzCase {
  const rng = new Rng(seed, index)
  const [, category, generate] = rng.weighted(CATEGORIES.map(([weight, name, generator]) => [weight, [weight, name, generator]] as const))
  const draft = generate(rng, ctx)
  // Now and then the same request without a valid key: on /v1 that has to be a 401 whatever else is wrong.
  if (draft.raw === undefined && draft.mayDrop !== true && draft.authorized && category !== 'auth' && rng.chance(0.06)) {
    const wrong = rng.pick([[], ['authorization', 'Bearer not-the-key'], ['x-api-key', 'nope']])
    const v1 = draft.path.startsWith('/v1/')
    const clean = v1 && /^\/v1\/[\w./~-]*(\?|$)/.test(draft.path)
    return {
      ...draft,
      id: `${index}`,
      category,
      label: `${draft.label} [${wrong.length === 0 ? 'no key' : 'wrong key'}]`,
      headers: [...STRIP_KEY(draft.headers), ...wrong],
      authorized: false,
      expect: v1 ? 'reject' : draft.expect,
      status: clean ? [401] : v1 ? undefined : draft.status
    }
  }
  return { ...draft, id: `${index}`, category }
}

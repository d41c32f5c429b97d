// Fixed cases, run on every seed: requests the fuzzer found mishandled once, kept so that each one shows up
// by name, and stays fixed. Each says what correct handling is.

import type { FuzzCase, FuzzContext } from './cases.ts'
import { deepJson, toJson } from './json.ts'

export function knownCases (ctx: FuzzContext): FuzzCase[] {
  const key = `Authorization: Bearer ${ctx.key}\r\n`
  const host = `Host: ${ctx.authority}\r\n`
  const chat = toJson({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] })
  const deep = deepJson(6000, 'array')
  const rawCase = (id: string, label: string, text: string, extra: Partial<FuzzCase> = {}): FuzzCase => ({
    id, category: 'known', label, method: /^[A-Z]+/.exec(text)?.[0] ?? '?', path: '/', headers: [], raw: [Buffer.from(text, 'latin1')], expect: 'reject', authorized: true, mayDrop: true, ...extra
  })
  const auth = ['authorization', `Bearer ${ctx.key}`]
  const json = ['content-type', 'application/json']
  return [
    {
      id: 'known-1',
      category: 'known',
      label: 'POST /v1/completions with an unknown field nested 6000 arrays deep (JSON.stringify overflows its stack)',
      method: 'POST',
      path: '/v1/completions',
      headers: [...auth, ...json],
      body: Buffer.from(`{"model":"qwen-plus","prompt":"hi","x_deep":${deep}}`),
      expect: 'any',
      authorized: true
    },
    {
      id: 'known-2',
      category: 'known',
      label: 'POST /v1/chat/completions, stream true, stream_options {}, an unknown field nested 6000 arrays deep',
      method: 'POST',
      path: '/v1/chat/completions',
      headers: [...auth, ...json],
      body: Buffer.from(`{"model":"qwen-plus","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{},"x_deep":${deep}}`),
      expect: 'any',
      authorized: true
    },
    {
      id: 'known-2b',
      category: 'known',
      label: 'POST /v1/chat/completions (not streaming) with a content part nested 6000 objects deep',
      method: 'POST',
      path: '/v1/chat/completions',
      headers: [...auth, ...json],
      body: Buffer.from(`{"model":"qwen-plus","messages":[{"role":"user","content":[{"type":"text","text":"hi","extra":${deepJson(6000, 'object')}}]}]}`),
      expect: 'any',
      authorized: true
    },
    rawCase('known-3', 'GET with an absolute-form target http://host/v1/models and no key is a 401',
      `GET http://${ctx.authority}/v1/models HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
      { path: `http://${ctx.authority}/v1/models`, authorized: false, status: [401], mayDrop: false }),
    rawCase('known-4', 'POST chat with an absolute-form target and no key is a 401 (and never reaches the upstream)',
      `POST http://evil.example/v1/chat/completions HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${chat.length}\r\nConnection: close\r\n\r\n${chat}`,
      { path: 'http://evil.example/v1/chat/completions', authorized: false, status: [401], mayDrop: false }),
    {
      id: 'known-5',
      category: 'known',
      label: 'GET /%761/models (a percent-encoded "v") without a key is a 401',
      method: 'GET',
      path: '/%761/models',
      headers: [],
      expect: 'reject',
      status: [401],
      authorized: false
    },
    {
      id: 'known-6',
      category: 'known',
      label: 'POST /%761/chat/completions (a percent-encoded "v") without a key is a 401',
      method: 'POST',
      path: '/%761/chat/completions',
      headers: json,
      body: Buffer.from(chat),
      expect: 'reject',
      status: [401],
      authorized: false
    },
    {
      id: 'known-7',
      category: 'known',
      label: 'GET /v1/models/%ff (invalid percent-encoding) is a 400 in the envelope',
      method: 'GET',
      path: '/v1/models/%ff',
      headers: auth,
      expect: 'reject',
      status: [400],
      authorized: true
    },
    rawCase('known-8', 'two different Content-Length headers: a 400 in the envelope, or the connection closed',
      `POST /v1/chat/completions HTTP/1.1\r\n${host}${key}Content-Type: application/json\r\nContent-Length: ${chat.length}\r\nContent-Length: ${chat.length + 1}\r\nConnection: close\r\n\r\n${chat}`,
      { path: '/v1/chat/completions', status: [400] }),
    rawCase('known-9', 'a header section over 16 KiB: a 431 in the envelope, or the connection closed',
      `GET /health HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20000)}\r\nConnection: close\r\n\r\n`,
      { path: '/health', status: [431] }),
    rawCase('known-10', 'an unknown method (FOO): a 4xx in the envelope, or the connection closed',
      `FOO /health HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
      { path: '/health' }),
    rawCase('known-11', 'HTTP/1.1 without a Host header: a 400 in the envelope, or the connection closed',
      'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n',
      { path: '/health', status: [400] }),
    rawCase('known-12', 'an Expect header other than 100-continue: a 417 in the envelope, or the connection closed',
      `POST /v1/chat/completions HTTP/1.1\r\n${host}${key}Content-Type: application/json\r\nExpect: nonsense\r\nContent-Length: ${chat.length}\r\nConnection: close\r\n\r\n${chat}`,
      { path: '/v1/chat/completions', status: [417] }),
    rawCase('known-13', 'a body shorter than its Content-Length, then a half-close: a 400 in the envelope, or the connection closed',
      `POST /v1/chat/completions HTTP/1.1\r\n${host}${key}Content-Type: application/json\r\nContent-Length: ${chat.length + 50}\r\n\r\n${chat}`,
      { path: '/v1/chat/completions', halfClose: true, status: [400] })
  ]
}

// What every answer to a fuzz case must satisfy. Returns the problems found, each with a short stable kind
// (used to group failures) and a detail.

import type { FuzzCase } from './cases.ts'
import type { Answer, Outcome } from './client.ts'

export interface Problem {
  kind: string
  detail: string
}

export interface Secrets {
  upstreamKey: string
  clientKey: string
}

// Stack frames, source locations and installation paths; none of them may reach a client.
const LEAKS: Array<[RegExp, string]> = [
  [/\n\s*at /, 'a stack trace'],
  [/\bat (?:async )?[\w.$<>]+ \(.*:\d+:\d+\)/, 'a stack frame'],
  [/node_modules/, 'a node_modules path'],
  [/file:\/\//, 'a file URL'],
  [/\.(?:ts|js|mjs|cjs):\d+/, 'a source location'],
  [/\/work\/|\/home\/|\/usr\/lib\/node/, 'a file system path']
]

const SAFE_REQUEST_ID = /^[\w.:@-]{1,128}$/

/** The path a request resolves to, whatever form the target had: absolute-form origins dropped, %-escapes decoded. */
export function effectivePath (target: string): string {
  const path = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '')
  try {
    return decodeURIComponent(path.split('?')[0])
  } catch {
    return path.split('?')[0]
  }
}

function leakProblems (message: unknown): Problem[] {
  if (typeof message !== 'string') return []
  return LEAKS.filter(([pattern]) => pattern.test(message)).map(([, what]) => ({ kind: 'leak', detail: `message contains ${what}: ${message.slice(0, 200)}` }))
}

/** Anthropic's error envelope, which /v1/messages answers in: {"type":"error","error":{"type","message"},"request_id"}. */
function anthropicEnvelopeProblems (parsed: unknown, text: string): Problem[] {
  const body = parsed as { type?: unknown, error?: { type?: unknown, message?: unknown } } | null
  const ok = body !== null && typeof body === 'object' && body.type === 'error' && typeof body.error === 'object' && body.error !== null &&
    typeof body.error.type === 'string' && typeof body.error.message === 'string'
  return ok ? [] : [{ kind: 'not-envelope', detail: `body is not {"type":"error","error":{type, message}}: ${text.slice(0, 200)}` }]
}

function envelopeProblems (answer: Answer, head: boolean, anthropic = false): Problem[] {
  const problems: Problem[] = []
  const type = answer.headers['content-type'] ?? ''
  if (!/^application\/json\b/i.test(type)) problems.push({ kind: 'not-json-content-type', detail: `content-type ${JSON.stringify(type)}` })
  if (head) return problems
  const text = answer.body.toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    problems.push({ kind: 'not-envelope', detail: `body is not JSON: ${JSON.stringify(text.slice(0, 200))}` })
    return problems
  }
  if (anthropic) {
    return [...problems, ...anthropicEnvelopeProblems(parsed, text), ...leakProblems((parsed as { error?: { message?: unknown } } | null)?.error?.message)]
  }
  const envelope = parsed as { error?: Record<string, unknown> }
  const error = envelope?.error
  const keys = typeof parsed === 'object' && parsed !== null ? Object.keys(parsed) : []
  if (typeof error !== 'object' || error === null || Array.isArray(error) || keys.length !== 1) {
    problems.push({ kind: 'not-envelope', detail: `body is not {"error":{...}}: ${text.slice(0, 200)}` })
    return problems
  }
  const fields = Object.keys(error).sort().join(',')
  const typesOk = typeof error.message === 'string' && typeof error.type === 'string' &&
    (error.param === null || typeof error.param === 'string') && (error.code === null || typeof error.code === 'string')
  if (fields !== 'code,message,param,type' || !typesOk) {
    problems.push({ kind: 'not-envelope', detail: `error object is not {message, type, param, code}: ${text.slice(0, 200)}` })
  }
  problems.push(...leakProblems(error.message))
  return problems
}

export function checkOutcome (c: FuzzCase, outcome: Outcome, secrets: Secrets): Problem[] {
  const problems: Problem[] = []
  if (outcome.answers.length === 0) {
    if (outcome.error?.startsWith('not sent')) return []
    if (!c.mayDrop) problems.push({ kind: 'no-answer', detail: `no answer (${outcome.error ?? 'connection closed'})` })
    return problems
  }
  const head = c.method === 'HEAD'
  const v1 = effectivePath(c.path).startsWith('/v1/')
  // The client key may be echoed when the client itself put it in the URL; the upstream key never.
  const clientKeyInUrl = c.path.includes(secrets.clientKey)
  outcome.answers.forEach((answer, index) => {
    const first = index === 0
    const status = answer.status
    if (status >= 500) problems.push({ kind: `status-${status}`, detail: `answered ${status}` })
    if (first && c.expect === 'reject' && status < 400) problems.push({ kind: 'accepted-invalid', detail: `answered ${status} to an invalid request` })
    if (first && c.status && status >= 400 && status < 500 && status !== 429 && !c.status.includes(status)) {
      problems.push({ kind: `status-${status}-not-${c.status.join('/')}`, detail: `answered ${status}, expected ${c.status.join(' or ')}` })
    }
    if (first && !c.authorized && v1 && status < 400) problems.push({ kind: 'auth-bypass', detail: `answered ${status} to a /v1 request without a valid key` })
    if (status >= 400) problems.push(...envelopeProblems(answer, head, /^\/v1\/messages(\/|$)/.test(effectivePath(c.path))))
    const whole = Object.entries(answer.headers).map(([name, value]) => `${name}: ${value}`).join('\n') + '\n' + answer.body.toString('latin1')
    if (whole.includes(secrets.upstreamKey)) problems.push({ kind: 'secret', detail: 'the answer contains the upstream DashScope key' })
    if (!clientKeyInUrl && whole.includes(secrets.clientKey)) problems.push({ kind: 'secret', detail: 'the answer contains the client key' })
    const requestId = answer.headers['x-request-id']
    if (requestId !== undefined && !SAFE_REQUEST_ID.test(requestId)) problems.push({ kind: 'unsafe-request-id', detail: `x-request-id ${JSON.stringify(requestId.slice(0, 100))}` })
  })
  return problems
}

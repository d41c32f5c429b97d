import type { OutgoingHttpHeaders } from 'node:http'
import type { Exchange } from './exchange.ts'
import { errorReply, type ErrorReply } from './errors.ts'
import type { Scenario } from './types.ts'

/**
 * Headers of a real DashScope answer (wire contract 1.4). Deliberately no
 * x-ratelimit-* headers: DashScope shows limits only in 429 bodies.
 */
export function dashscopeHeaders (ex: Exchange): OutgoingHttpHeaders {
  const cost = String(Math.round(performance.now() - ex.rec.startedAt))
  return {
    'x-request-id': ex.requestId,
    'x-dashscope-call-gateway': 'true',
    'req-cost-time': cost,
    'x-envoy-upstream-service-time': cost,
    server: 'istio-envoy'
  }
}

export function sendJson (ex: Exchange, status: number, body: unknown, extra: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body)
  sendText(ex, status, { 'content-type': 'application/json', ...extra }, text)
}

export function sendError (ex: Exchange, reply: ErrorReply, retryAfter?: number): void {
  const extra: OutgoingHttpHeaders = { 'content-type': reply.contentType }
  // DashScope sends no retry-after on 429 (contract 1.8); tests may ask for one.
  if (reply.status === 429 && retryAfter !== undefined) extra['retry-after'] = String(retryAfter)
  sendText(ex, reply.status, extra, reply.body)
}

function sendText (ex: Exchange, status: number, extra: OutgoingHttpHeaders, text: string): void {
  const headers: OutgoingHttpHeaders = { ...dashscopeHeaders(ex), ...extra, 'content-length': Buffer.byteLength(text) }
  if (extra['content-type'] === 'text/html') {
    // An HTML page comes from a front proxy, not from the DashScope gateway.
    delete headers['x-dashscope-call-gateway']
    delete headers['req-cost-time']
  }
  ex.head(status, headers)
  ex.end(text)
}

/**
 * What every endpoint does before it answers, in DashScope's order: a reset or a stall before the headers, the time
 * to first byte, an injected error. True when one of them answered (or cut) the exchange.
 */
export async function faultBeforeAnswer (ex: Exchange, scenario: Scenario, body: any): Promise<boolean> {
  if (scenario.resetBeforeHeaders === true) {
    ex.destroy()
    return true
  }
  if (scenario.stall === 'headers') {
    await ex.stall()
    return true
  }
  await ex.sleep(scenario.ttfbMs)
  if (scenario.error === undefined) return false
  const model = typeof body?.model === 'string' ? body.model : ''
  sendError(ex, errorReply(scenario.error, ex.requestId, model), scenario.retryAfter)
  return true
}

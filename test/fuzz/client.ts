// Two ways to send a fuzz case: node:http (keep-alive, for anything node:http agrees to send) and a plain TCP
// socket (for the bytes it refuses to write). Both give back the answers as status, headers and body.

import http from 'node:http'
import net from 'node:net'
import type { FuzzCase } from './cases.ts'

export interface Answer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export interface Outcome {
  /** The answers, in order; usually one, none when the connection closed or broke without one. */
  answers: Answer[]
  /** What went wrong on the connection: an error code, 'timeout', or nothing. */
  error?: string
  ms: number
}

const MAX_BODY = 8 * 1024 * 1024

function hasHeader (headers: string[], name: string): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i].toLowerCase() === name) return true
  return false
}

function flatten (headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

/**
 * Sends a case with node:http. Cases that may break the connection (mayDrop) get a connection of their own,
 * so that leftovers of a half-read body can never be taken for the start of the next case's request.
 */
export async function sendHttp (port: number, agent: http.Agent, c: FuzzCase, timeoutMs: number): Promise<Outcome> {
  const outcome = await sendHttpOnce(port, agent, c, timeoutMs, false)
  // A kept-alive socket the server closed just as it was handed out (for instance after an answer that
  // closed the connection without saying so): the request never reached the server. Node's documented
  // remedy is to send it again, here on a connection of its own.
  if (outcome.reusedSocketReset) return sendHttpOnce(port, agent, c, timeoutMs, true)
  return outcome
}

function sendHttpOnce (port: number, agent: http.Agent, c: FuzzCase, timeoutMs: number, forceFresh: boolean): Promise<Outcome & { reusedSocketReset?: boolean }> {
  return new Promise(resolve => {
    const started = performance.now()
    let settled = false
    let answer: Answer | undefined
    let request: http.ClientRequest | undefined
    const finish = (error?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const reusedSocketReset = answer === undefined && error === 'ECONNRESET' && request?.reusedSocket === true
      resolve({ answers: answer ? [answer] : [], error, ms: performance.now() - started, reusedSocketReset })
    }
    const headers = [...c.headers]
    if (!hasHeader(headers, 'host')) headers.push('host', `127.0.0.1:${port}`)
    if (c.body && c.chunked && !hasHeader(headers, 'transfer-encoding')) headers.push('transfer-encoding', 'chunked')
    if (c.body && !c.chunked && !hasHeader(headers, 'content-length') && !hasHeader(headers, 'transfer-encoding')) headers.push('content-length', String(c.body.length))
    const fresh = c.mayDrop === true || forceFresh
    if (fresh && !hasHeader(headers, 'connection')) headers.push('connection', 'close')

    try {
      request = http.request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent: fresh ? false : agent })
    } catch (error) {
      // node:http refused to build the request (invalid header value or path): the case cannot be sent this way.
      settled = true
      resolve({ answers: [], error: `not sent: ${(error as Error).message}`, ms: 0 })
      return
    }
    const timer = setTimeout(() => {
      request.destroy()
      finish('timeout')
    }, timeoutMs)

    request.on('response', response => {
      const chunks: Buffer[] = []
      let size = 0
      response.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size <= MAX_BODY) chunks.push(chunk)
        else response.destroy()
      })
      answer = { status: response.statusCode ?? 0, headers: flatten(response.headers), body: Buffer.alloc(0) }
      const done = (error?: string) => {
        if (answer) answer.body = Buffer.concat(chunks)
        finish(error)
      }
      response.on('end', () => done())
      response.on('error', error => done((error as NodeJS.ErrnoException).code ?? error.message))
      response.on('close', () => done(response.complete ? undefined : 'incomplete'))
    })
    request.on('error', error => finish((error as NodeJS.ErrnoException).code ?? error.message))

    if (!c.body) {
      request.end()
    } else if (c.chunked) {
      const pieces = 3
      const step = Math.ceil(c.body.length / pieces)
      for (let i = 0; i < c.body.length; i += step) request.write(c.body.subarray(i, i + step))
      request.end()
    } else {
      request.end(c.body)
    }
  })
}

/** Sends raw bytes on a new connection and reads until the server closes it (or `timeoutMs` passes). */
export function sendRaw (port: number, c: FuzzCase, timeoutMs: number): Promise<Outcome> {
  return new Promise(resolve => {
    const started = performance.now()
    const chunks: Buffer[] = []
    let error: string | undefined
    let settled = false
    const socket = net.connect({ host: '127.0.0.1', port })
    const finish = (reason?: string) => {
      if (settled) return
      settled = true
      clearTimeout(idle)
      clearTimeout(hard)
      socket.destroy()
      resolve({ answers: parseAnswers(Buffer.concat(chunks)), error: reason ?? error, ms: performance.now() - started })
    }
    // A server that neither answers nor closes gets a half-close, then a little more time.
    const idle = setTimeout(() => { if (!socket.destroyed) socket.end() }, Math.min(2000, timeoutMs / 2))
    const hard = setTimeout(() => finish('timeout'), timeoutMs)
    socket.on('connect', () => {
      for (const chunk of c.raw ?? []) socket.write(chunk)
      if (c.halfClose) socket.end()
    })
    socket.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    socket.on('error', (err: NodeJS.ErrnoException) => { error = err.code ?? err.message })
    socket.on('close', () => finish())
  })
}

/** Parses one or more HTTP/1.x responses; 1xx interim responses are skipped. */
export function parseAnswers (data: Buffer): Answer[] {
  const answers: Answer[] = []
  let offset = 0
  while (offset < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', offset)
    if (headEnd === -1) break
    const [statusLine, ...lines] = data.subarray(offset, headEnd).toString('latin1').split('\r\n')
    const match = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(statusLine)
    if (!match) break
    const status = Number(match[1])
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    let position = headEnd + 4
    if (status >= 100 && status < 200) {
      offset = position
      continue
    }
    let body: Buffer
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = []
      while (position < data.length) {
        const lineEnd = data.indexOf('\r\n', position)
        if (lineEnd === -1) break
        const size = parseInt(data.subarray(position, lineEnd).toString('latin1'), 16)
        if (Number.isNaN(size)) break
        if (size === 0) {
          const trailerEnd = data.indexOf('\r\n', lineEnd + 2)
          position = trailerEnd === -1 ? data.length : trailerEnd + 2
          break
        }
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
        position = lineEnd + 2 + size + 2
      }
      body = Buffer.concat(parts)
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length'])
      body = data.subarray(position, position + length)
      position += length
    } else {
      body = data.subarray(position)
      position = data.length
    }
    answers.push({ status, headers, body })
    offset = position
  }
  return answers
}

import t, { type Test } from 'tap'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { payloads, postJson, readEvents, startStack, user, type SseEvent } from '../helper.ts'
import { spawnGateway } from '../process-helper.ts'
import { startSimulator } from '../simulator/index.ts'

// Issue 9, "An upstream frame can hurt the process": an upstream that is broken or hostile costs at most its own
// stream. Mid-stream failures follow wire contract §2.7: one `data: {"error":...}` event, then the end, no [DONE].

const MiB = 1024 * 1024

/** The events of a stream, or the reason there were none: a stream that hangs fails the test instead of stalling it. */
async function streamEvents (url: string, body: object, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<SseEvent[] | string> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs)
    })
    if (res.status !== 200) return `status ${res.status}: ${await res.text()}`
    return await readEvents(res)
  } catch (error) {
    return `no clean end of the stream: ${String(error)}`
  }
}

/** The error of the stream's last event, checking that it is the only error and that no [DONE] follows. */
function lastError (t: Test, events: SseEvent[] | string) {
  if (typeof events === 'string') {
    t.fail(events)
    return null
  }
  const last = events.at(-1)
  t.not(last?.data, '[DONE]', 'no [DONE] after a failure (wire contract §2.7)')
  t.notOk(events.some(event => event.data === '[DONE]'), 'no [DONE] anywhere')
  const errors = events.filter(event => event.data.startsWith('{"error"'))
  t.equal(errors.length, 1, 'exactly one error event')
  const error = last?.data.startsWith('{"error"') === true ? JSON.parse(last.data).error : null
  t.same(error && Object.keys(error).sort(), ['code', 'message', 'param', 'type'], 'the OpenAI error envelope')
  return error as { message: string, type: string, code: string, param: null }
}

const tokenSample = (text: string, model: string, type: string) =>
  Number(new RegExp(`^qwen_gateway_tokens_total\\{model="${model}",client="anonymous",type="${type}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)

async function tokensCounted (origin: string, model: string) {
  // Counted when the stream's last events were read: the client may see [DONE] a moment before the metric moves.
  await sleep(20)
  const text = await (await fetch(`${origin}/metrics`)).text()
  return { prompt: tokenSample(text, model, 'prompt'), completion: tokenSample(text, model, 'completion') }
}

t.test('an event that never ends is cut at MAX_FRAME_BYTES: one error event, the upstream closed, other requests served', async t => {
  const { sim, baseURL } = await startStack(t)
  const huge = streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { reply: 'one two three', hugeFrame: { bytes: 48 * MiB } } })
  await sim.waitFor('request')
  // Requests served while the huge event arrives: none may be shed because the event loop stalls.
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    const res = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-flash', messages: user(`ping ${i}`) })
    statuses.push(res.status)
    await res.text()
  }
  t.same(statuses, [200, 200, 200, 200, 200], 'no 503 overloaded while the event streams in')
  const events = await huge
  const error = lastError(t, events)
  t.equal(error?.code, 'upstream_frame_too_large')
  t.equal(error?.type, 'server_error')
  t.match(error?.message, /larger than MAX_FRAME_BYTES \(4194304 bytes\)/)
  if (typeof events !== 'string') {
    t.equal(payloads(events.slice(0, -1)).map(chunk => chunk.choices[0].delta.content).join(''), 'one two ', 'what came before it reached the client')
  }
  // The only upstream request the gateway leaves early is the one with the huge event.
  const closed = await sim.waitFor('client-closed').catch(() => null)
  t.ok(closed?.body?.sim?.hugeFrame, 'the gateway closed the upstream connection instead of reading on')
  t.equal(closed?.finishedAt, undefined, 'before the simulator had sent the 48 MiB')
})

t.test('MAX_FRAME_BYTES is the limit: a complete event over it ends the stream, one under it passes intact', async t => {
  const { baseURL } = await startStack(t, { env: { MAX_FRAME_BYTES: String(256 * 1024) } })
  const over = await streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { reply: 'one two three', hugeFrame: { bytes: 300_000, complete: true } } })
  const error = lastError(t, over)
  t.equal(error?.code, 'upstream_frame_too_large')
  t.match(error?.message, /MAX_FRAME_BYTES \(262144 bytes\)/)

  const under = await streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { reply: 'one two three', hugeFrame: { bytes: 200_000, complete: true }, chunkSize: 1000 } })
  if (typeof under === 'string') return t.fail(under)
  t.equal(under.at(-1)?.data, '[DONE]')
  const contents = payloads(under).map(chunk => chunk.choices[0].delta.content)
  t.match(contents[3], /^x{199000,}$/, 'the large event arrived whole')
  t.equal([...contents.slice(0, 3), ...contents.slice(4)].join(''), 'one two three')
})

t.test('an event that cannot be read ends the stream with an upstream_protocol error event', async t => {
  const { baseURL, origin } = await startStack(t)
  for (const kind of ['usage', 'tool_calls', 'choices_string'] as const) {
    const events = await streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { reply: 'one two three', malformedFrame: { kind } } })
    const error = lastError(t, events)
    t.equal(error?.code, 'upstream_protocol_error', kind)
    t.match(error?.message, /sent an answer the gateway could not read: /, kind)
  }
  // Through the legacy route too, which rewrites every chunk.
  const legacy = await streamEvents(`${baseURL}/completions`, { model: 'qwen-plus', prompt: 'x', stream: true, sim: { reply: 'one two three', malformedFrame: { kind: 'choices_string' } } })
  t.equal(lastError(t, legacy)?.code, 'upstream_protocol_error', 'legacy completions')
  t.equal((await fetch(`${origin}/health`)).status, 200, 'the gateway still answers')
})

t.test('an odd event nothing needed to read passes untouched; the same event where a transform must read it ends the stream', async t => {
  const { baseURL } = await startStack(t)
  const body = { model: 'qwen-plus', messages: user('x'), stream: true, sim: { reply: 'one two three', reasoning: 'hmm', malformedFrame: { kind: 'tool_calls_object' } } }
  const plain = await streamEvents(`${baseURL}/chat/completions`, body)
  if (typeof plain === 'string') return t.fail(plain)
  t.equal(plain.at(-1)?.data, '[DONE]', 'passed through, stream complete')
  t.ok(plain.some(event => event.data.includes('"tool_calls":{}')), 'the odd event reached the client as it was')

  const thinkTags = await streamEvents(`${baseURL}/chat/completions`, body, { 'x-reasoning-format': 'think-tags' })
  t.equal(lastError(t, thinkTags)?.code, 'upstream_protocol_error', 'with think tags every chunk is rewritten')
})

t.test('JSON written with spaces: usage is counted, dropped when not asked for, finish_reason and tool calls seen', async t => {
  const { baseURL, origin } = await startStack(t)
  const sim = { usage: { prompt_tokens: 21, completion_tokens: 5 }, framing: { spaced: true } }
  const quiet = await streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim })
  if (typeof quiet === 'string') return t.fail(quiet)
  t.equal(quiet.at(-1)?.data, '[DONE]')
  t.notOk(quiet.some(event => event.data.includes('"usage": {')), 'no usage chunk without include_usage')
  t.same(await tokensCounted(origin, 'qwen-plus'), { prompt: 21, completion: 5 }, 'the tokens were counted')

  const asked = await streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-flash', messages: user('x'), stream: true, stream_options: { include_usage: true }, sim })
  if (typeof asked === 'string') return t.fail(asked)
  t.match(payloads(asked).at(-1), { choices: [], usage: { prompt_tokens: 21, completion_tokens: 5 } }, 'usage chunk when asked for')
  t.same(await tokensCounted(origin, 'qwen-flash'), { prompt: 21, completion: 5 })

  // No [DONE] from the upstream: whether the answer was complete depends on seeing its finish_reason.
  const noDone = await streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { framing: { spaced: true, noDone: true } } })
  if (typeof noDone === 'string') return t.fail(noDone)
  t.equal(noDone.at(-1)?.data, '[DONE]', 'a complete answer, not upstream_stream_incomplete')

  const tools = await streamEvents(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { toolCalls: [{ name: 'read_file', arguments: '{"path": "a.ts"}' }], framing: { spaced: true } } })
  if (typeof tools === 'string') return t.fail(tools)
  const deltas = payloads(tools).flatMap(chunk => chunk.choices[0]?.delta?.tool_calls ?? [])
  t.notOk(deltas.some(delta => delta.id === '' || delta.function?.arguments === null), 'tool-call deltas normalised (no empty id, no null arguments)')
  t.match(deltas[0], { index: 0, type: 'function', function: { name: 'read_file', arguments: '' } })
})

t.test('process: an unreadable event after backpressure neither crashes the gateway nor stops it serving', async t => {
  const sim = await startSimulator()
  t.after(() => sim.close())
  // Events of up to 16 MiB are allowed here: the padding must outgrow what loopback sockets buffer.
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '1000', MAX_FRAME_BYTES: String(16 * MiB) })
  const url = new URL(`${gateway.baseURL}/chat/completions`)
  const body = JSON.stringify({ model: 'qwen-plus', messages: user('x'), stream: true, sim: { reply: 'one two three', malformedFrame: { kind: 'usage', paddingBytes: 8 * MiB } } })
  // A client that reads nothing for a while: the 8 MiB event fills every buffer on the way, the relay pauses the
  // upstream body, and the broken event waits in it. When reading resumes, the body emits it on a tick of its own,
  // outside undici's parser (which would otherwise catch a throw and report a broken connection).
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, res => {
      res.pause()
      setTimeout(() => {
        const parts: Buffer[] = []
        res.on('data', part => parts.push(part))
        res.on('end', () => resolve(Buffer.concat(parts).toString()))
        res.on('error', reject)
        res.resume()
      }, 500)
    })
    req.on('error', reject)
    req.end(body)
  }).catch(error => `stream cut: ${String(error)}`)
  const last = text.trimEnd().split('\n\n').at(-1) ?? ''
  t.match(last, /^data: \{"error":\{"message":"The upstream [^"]+ sent an answer the gateway could not read: /, 'the stream ended with an error event')
  t.notOk(text.includes('[DONE]'))
  t.equal(gateway.child.exitCode, null, 'the gateway is still running')
  const next = await postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('still there?') }).catch(() => null)
  t.equal(next?.status, 200, 'the next request is served')
  t.notMatch(gateway.output(), /fatal error, shutting down/)
})

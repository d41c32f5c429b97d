import t from 'tap'
import { PassThrough } from 'node:stream'
import { FrameTooLargeError, frameEnd, SseRelay, UnreadableFrameError, type FrameHandler } from '../../src/sse/relay.ts'
import { legacyEventWriter, LegacyStreamState } from '../../src/adapters/legacy-completions.ts'
import { ChatStreamHandler, type StreamObserver } from '../../src/adapters/chat-stream.ts'
import type { Usage } from '../../src/adapters/usage.ts'
import type { GatewayError } from '../../src/errors.ts'

const context = { name: 'dashscope', host: 'upstream.test', keyCount: 1, nativeTools: true }

const chunk = (delta: object, finish: string | null = null) =>
  `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"qwen-plus","usage":null,"choices":[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}\n\n`
const usageChunk = 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"qwen-plus","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n'

// Roo Code's XML tool markup and a multi-byte character: both must arrive byte for byte.
const xmlText = 'Reading first.\n<read_file>\n<path>src/a.ts</path>\n</read_file> — 完成 ✓'
const stream = [
  chunk({ role: 'assistant', content: '' }),
  chunk({ content: xmlText.slice(0, 20) }),
  chunk({ content: xmlText.slice(20) }),
  chunk({ content: '' }, 'stop'),
  usageChunk,
  'data: [DONE]\n\n'
].join('')

interface Seen {
  firstToken: number
  usage: Usage[]
  errors: GatewayError[]
}

function observer (): [StreamObserver, Seen] {
  const seen: Seen = { firstToken: 0, usage: [], errors: [] }
  return [{ firstToken: () => seen.firstToken++, usage: usage => seen.usage.push(usage), error: error => seen.errors.push(error) }, seen]
}

async function relay (parts: Array<Buffer | string>, handler: FrameHandler, failWith?: Error): Promise<string> {
  const source = new PassThrough()
  const relayed = new SseRelay().attach(source, handler)
  const out: Buffer[] = []
  relayed.on('data', (buf: Buffer) => out.push(buf))
  const ended = new Promise(resolve => relayed.once('end', resolve))
  for (const part of parts) source.write(typeof part === 'string' ? Buffer.from(part) : part)
  if (failWith) source.destroy(failWith)
  else source.end()
  await ended
  return Buffer.concat(out).toString()
}

t.test('frameEnd finds LF and CRLF blank lines', async t => {
  t.equal(frameEnd(Buffer.from('data: x\n\nrest'), 0), 9)
  t.equal(frameEnd(Buffer.from('data: x\r\n\r\nrest'), 0), 11)
  t.equal(frameEnd(Buffer.from('data: x\n'), 0), -1)
  t.equal(frameEnd(Buffer.from('a\nb\n\n'), 0), 5)
})

t.test('with include_usage, the upstream bytes pass through unchanged', async t => {
  const [obs, seen] = observer()
  const out = await relay([stream], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.equal(out, stream)
  t.equal(seen.firstToken, 1)
  t.same(seen.usage, [{ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 }])
})

t.test('split at every byte boundary, the output is the same bytes (UTF-8 split inside characters too)', async t => {
  const bytes = Buffer.from(stream)
  for (let cut = 1; cut < bytes.length; cut++) {
    const [obs, seen] = observer()
    const out = await relay([bytes.subarray(0, cut), bytes.subarray(cut)], new ChatStreamHandler({ includeUsage: true }, obs, context))
    if (out !== stream) {
      t.fail(`different output when split at byte ${cut}`)
      return
    }
    t.equal(seen.usage.length, 1)
  }
  t.pass('every split point relayed the stream intact')
})

t.test('one byte per read still relays the stream intact', async t => {
  const bytes = Buffer.from(stream)
  const parts = Array.from(bytes, byte => Buffer.from([byte]))
  const [obs] = observer()
  t.equal(await relay(parts, new ChatStreamHandler({ includeUsage: true }, obs, context)), stream)
})

t.test('without include_usage, the usage chunk is recorded but not forwarded', async t => {
  const [obs, seen] = observer()
  const out = await relay([stream], new ChatStreamHandler({ includeUsage: false }, obs, context))
  t.equal(out, stream.replace(usageChunk, ''))
  t.equal(seen.usage[0].prompt_tokens, 9)
})

t.test('CRLF framing, upstream comments and `data:` without a space are normalised, content intact', async t => {
  const crlf = stream.replace(/\n/g, '\r\n').replace('data: [DONE]', 'data:[DONE]')
  const [obs, seen] = observer()
  const out = await relay([': ping\r\n\r\n', crlf], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.ok(out.startsWith(': ping\r\n\r\n'), 'comment passes')
  t.ok(out.endsWith('data: [DONE]\n\n'), '[DONE] normalised')
  t.ok(out.includes(JSON.stringify(xmlText.slice(20))), 'content intact')
  t.equal(seen.usage.length, 1)
})

t.test('data after [DONE] is discarded', async t => {
  const [obs] = observer()
  const out = await relay([stream + chunk({ content: 'late' })], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.equal(out, stream)
})

t.test('an upstream that forgets [DONE] still ends with one when the answer was complete', async t => {
  const [obs] = observer()
  const out = await relay([stream.replace('data: [DONE]\n\n', '')], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.equal(out, stream)
})

t.test('a last event without its blank line is still relayed', async t => {
  const [obs] = observer()
  const out = await relay([stream.replace('data: [DONE]\n\n', 'data: [DONE]')], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.equal(out, stream)
})

t.test('a stream cut before any finish_reason ends with an error event, not [DONE]', async t => {
  const [obs, seen] = observer()
  const out = await relay([chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hel' })], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.notOk(out.includes('[DONE]'))
  const last = JSON.parse(out.trim().split('\n\n').at(-1)!.slice(6))
  t.equal(last.error.code, 'upstream_stream_incomplete')
  t.equal(seen.errors.length, 1)
})

t.test('DashScope error events become one OpenAI error event and the stream ends', async t => {
  const wrapped = 'data: {"error":{"message":"Output data may contain inappropriate content.","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"},"id":"chatcmpl-1"}\n\n'
  const unwrapped = 'event: error\ndata: {"code":"Throttling.AllocationQuota","message":"Quota exhausted"}\n\n'
  for (const [name, frame, code, errorType] of [
    ['wrapped', wrapped, 'data_inspection_failed', 'upstream_content_filter'],
    ['event: error, unwrapped', unwrapped, 'Throttling.AllocationQuota', 'upstream_quota']
  ]) {
    const [obs, seen] = observer()
    const out = await relay([chunk({ content: 'Hi' }), frame, chunk({ content: 'never' })], new ChatStreamHandler({ includeUsage: true }, obs, context))
    const events = out.trim().split('\n\n')
    t.equal(events.length, 2, `${name}: one content event, one error event`)
    const error = JSON.parse(events[1].slice(6)).error
    t.same(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], name)
    t.equal(error.code, code, name)
    t.equal(seen.errors[0].errorType, errorType, name)
    t.notOk(out.includes('event:'), `${name}: no event line reaches the client`)
  }
})

t.test('an upstream failure mid-stream becomes an error event', async t => {
  const [obs, seen] = observer()
  const out = await relay([chunk({ content: 'Hi' })], new ChatStreamHandler({ includeUsage: true }, obs, context), new Error('socket hang up'))
  const events = out.trim().split('\n\n')
  t.equal(JSON.parse(events.at(-1)!.slice(6)).error.code, 'upstream_connection_lost')
  t.equal(seen.errors.length, 1)
})

t.test('non-JSON data events are dropped (the official SDK would throw on them)', async t => {
  const [obs] = observer()
  const out = await relay(['event: ping\ndata: \n\n', 'data: hello\n\n', stream], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.equal(out, stream)
})

t.test('destroying the relay (client gone) destroys the upstream body', async t => {
  const source = new PassThrough()
  const [obs] = observer()
  const relayed = new SseRelay().attach(source, new ChatStreamHandler({ includeUsage: true }, obs, context))
  relayed.resume()
  source.write(chunk({ content: 'Hi' }))
  relayed.destroy()
  t.ok(source.destroyed)
})

// Issue 9: what a broken or hostile upstream can do to one stream, and no more.

/** A handler that passes every frame through, fails with a marker event, and records what it was told. */
function recordingHandler (overrides: Partial<FrameHandler> = {}) {
  const seen = { frames: [] as string[], failures: [] as Error[] }
  const handler: FrameHandler = {
    done: false,
    frame (frame) {
      seen.frames.push(frame.toString())
      return undefined
    },
    end: () => 'data: [DONE]\n\n',
    fail (error) {
      seen.failures.push(error)
      return 'data: {"error":{}}\n\n'
    },
    ...overrides
  }
  return { handler, seen }
}

t.test('a blank line split across reads in every way ends the event there (LF and CRLF)', async t => {
  for (const nl of ['\n', '\r\n']) {
    const text = `data: {"a":1}${nl}${nl}data: {"b":2}${nl}${nl}`
    const bytes = Buffer.from(text)
    for (let i = 1; i < bytes.length - 1; i++) {
      for (const j of [i + 1, i + 2, i + 3]) {
        if (j >= bytes.length) continue
        const { handler, seen } = recordingHandler()
        const out = await relay([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)], handler)
        if (out !== text + 'data: [DONE]\n\n' || seen.frames.length !== 2 || seen.frames[0] !== `data: {"a":1}${nl}${nl}`) {
          t.fail(`${JSON.stringify(nl)} split at ${i} and ${j}: ${JSON.stringify(seen.frames)}`)
          return
        }
      }
    }
  }
  t.pass('every split found the same two events')
})

t.test('a long event in many reads is joined once, not copied again on every read', async t => {
  const event = Buffer.from(`data: {"choices":[{"index":0,"delta":{"content":"${'x'.repeat(2 * 1024 * 1024)}"}}]}\n\n`)
  const parts: Buffer[] = []
  for (let i = 0; i < event.length; i += 1024) parts.push(event.subarray(i, i + 1024))
  const concat = Buffer.concat
  let copied = 0
  Buffer.concat = (list: readonly Uint8Array[], length?: number) => {
    const joined = concat(list, length)
    copied += joined.length
    return joined
  }
  let out: string
  try {
    const { handler } = recordingHandler()
    out = await relay(parts, handler)
  } finally {
    Buffer.concat = concat
  }
  t.equal(out, event.toString() + 'data: [DONE]\n\n')
  // Once by the relay, once by this test's own join of the output; a copy per read would be about a thousand times more.
  t.ok(copied <= 2 * event.length + 64, `copied ${copied} bytes for an event of ${event.length} in ${parts.length} reads`)
})

t.test('an event that outgrows maxFrameBytes ends the stream with the handler\'s error event and destroys the upstream', async t => {
  const source = new PassThrough()
  const { handler, seen } = recordingHandler()
  const relayed = new SseRelay({ maxFrameBytes: 1024 }).attach(source, handler)
  const out: Buffer[] = []
  relayed.on('data', (buf: Buffer) => out.push(buf))
  const ended = new Promise(resolve => relayed.once('end', resolve))
  source.write('data: {"first":true}\n\ndata: {"huge":"')
  for (let i = 0; i < 4 && !source.destroyed; i++) source.write('y'.repeat(400))
  await ended
  t.equal(Buffer.concat(out).toString(), 'data: {"first":true}\n\ndata: {"error":{}}\n\n', 'what came before, then the error event')
  t.equal(seen.failures.length, 1)
  t.type(seen.failures[0], FrameTooLargeError)
  t.equal((seen.failures[0] as FrameTooLargeError).maxBytes, 1024)
  t.ok(source.destroyed, 'the upstream body was destroyed, not drained')
  t.ok(relayed.failed)
})

t.test('a complete event over maxFrameBytes in one read is refused too; one of exactly maxFrameBytes passes', async t => {
  const exact = `data: "${'z'.repeat(1024 - 10)}"\n\n`
  t.equal(Buffer.byteLength(exact), 1024)
  const ok = recordingHandler()
  const source = new PassThrough()
  const relayed = new SseRelay({ maxFrameBytes: 1024 }).attach(source, ok.handler)
  const out: Buffer[] = []
  relayed.on('data', (buf: Buffer) => out.push(buf))
  const ended = new Promise(resolve => relayed.once('end', resolve))
  source.end(exact)
  await ended
  t.equal(Buffer.concat(out).toString(), exact + 'data: [DONE]\n\n')

  const over = recordingHandler()
  const refused = await new Promise<string>(resolve => {
    const source = new PassThrough()
    const relayed = new SseRelay({ maxFrameBytes: 1024 }).attach(source, over.handler)
    const out: Buffer[] = []
    relayed.on('data', (buf: Buffer) => out.push(buf))
    relayed.once('end', () => resolve(Buffer.concat(out).toString()))
    source.end(`data: "${'z'.repeat(1024)}"\n\n`)
  })
  t.equal(refused, 'data: {"error":{}}\n\n')
  t.type(over.seen.failures[0], FrameTooLargeError)
})

t.test('the chat handler names MAX_FRAME_BYTES in its error event', async t => {
  const [obs, seen] = observer()
  const source = new PassThrough()
  const relayed = new SseRelay({ maxFrameBytes: 2048 }).attach(source, new ChatStreamHandler({ includeUsage: true }, obs, context))
  const out: Buffer[] = []
  relayed.on('data', (buf: Buffer) => out.push(buf))
  const ended = new Promise(resolve => relayed.once('end', resolve))
  source.write(chunk({ role: 'assistant', content: '' }))
  source.write('data: {"choices":[{"delta":{"content":"' + 'w'.repeat(4096))
  await ended
  const events = Buffer.concat(out).toString().trim().split('\n\n')
  t.same(JSON.parse(events.at(-1)!.slice(6)), {
    error: {
      message: 'The upstream upstream.test sent an SSE event larger than MAX_FRAME_BYTES (2048 bytes); the stream was stopped. Raise MAX_FRAME_BYTES if the upstream really sends events this large.',
      type: 'server_error',
      param: null,
      code: 'upstream_frame_too_large'
    }
  })
  t.equal(seen.errors[0].errorType, 'upstream_protocol')
})

t.test('whatever a handler throws on an event ends the stream with its error event, never escapes', async t => {
  const { handler, seen } = recordingHandler({
    frame (frame) {
      if (frame.includes('boom')) throw new TypeError('cannot read this')
      return undefined
    }
  })
  const source = new PassThrough()
  const out = await relay(['data: {"a":1}\n\ndata: {"boom":1}\n\ndata: {"never":1}\n\n'], handler)
  t.equal(out, 'data: {"a":1}\n\ndata: {"error":{}}\n\n', 'events before it, then the error event; nothing after')
  t.type(seen.failures[0], UnreadableFrameError)
  t.type(seen.failures[0].cause, TypeError)
  source.destroy()
})

t.test('a handler that throws after backpressure (the body emits on a tick of its own) is still caught', async t => {
  // Nothing reads the relay at first: its buffer fills, it pauses the body, and the body buffers the broken event.
  // Reading then resumes the body, which emits from a nextTick, outside any caller that could catch.
  const [obs, seen] = observer()
  const source = new PassThrough()
  const relayed = new SseRelay().attach(source, new ChatStreamHandler({ includeUsage: false }, obs, context))
  const content = chunk({ content: 'p'.repeat(16 * 1024) })
  for (let i = 0; i < 8; i++) source.write(content)
  await new Promise(resolve => setImmediate(resolve))
  t.ok(source.isPaused(), 'the relay paused the upstream body')
  source.write('data: {"choices":[],"usage":{"prompt_tokens":12,\n\n')
  const out: Buffer[] = []
  relayed.on('data', (buf: Buffer) => out.push(buf))
  await new Promise(resolve => relayed.once('end', resolve))
  const last = JSON.parse(Buffer.concat(out).toString().trim().split('\n\n').at(-1)!.slice(6))
  t.equal(last.error.code, 'upstream_protocol_error')
  t.equal(last.error.message, 'The upstream upstream.test sent an answer the gateway could not read: an event was not valid JSON.')
  t.equal(seen.errors.length, 1)
  t.ok(source.destroyed)
})

t.test('a handler that fails to describe its failure still ends the stream with an error event', async t => {
  const { handler } = recordingHandler({
    frame: () => { throw new Error('first') },
    fail: () => { throw new Error('second') }
  })
  const out = await relay(['data: {}\n\n'], handler)
  t.equal(JSON.parse(out.slice(6)).error.code, 'internal_error')

  const ending = recordingHandler({ end: () => { throw new Error('at the end') } })
  t.equal(await relay(['data: {}\n\n'], ending.handler), 'data: {}\n\ndata: {"error":{}}\n\n')
  t.type(ending.seen.failures[0], UnreadableFrameError)
})

t.test('chunks the transforms cannot work on end the stream with upstream_protocol_error; odd ones nothing reads pass', async t => {
  const cases: Array<[string, string, object, RegExp | null]> = [
    ['truncated usage', 'data: {"choices":[],"usage":{"prompt_tokens":1,\n\n', {}, /an event was not valid JSON/],
    ['truncated tool calls', 'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,\n\n', {}, /an event was not valid JSON/],
    ['choices a string', 'data: {"choices":"x","usage":{"prompt_tokens":1}}\n\n', {}, /an event had an unexpected shape \("choices" is not a list\)/],
    ['tool_calls an object, think tags', 'data: {"choices":[{"index":0,"delta":{"content":"","tool_calls":{}}}]}\n\n', { thinkTags: true }, /"tool_calls" is not a list/],
    ['usage a string, legacy', 'data: {"choices":[{"index":0,"delta":{"content":"a"}}],"usage":"x"}\n\n', { writer: legacyEventWriter(new LegacyStreamState('qwen-plus'), 0) }, /"usage" is not an object/],
    ['broken usage without a space after data:', 'data:{"choices":[],"usage":{"prompt\n\n', {}, /not valid JSON/],
    ['tool_calls an object, nothing to transform', 'data: {"choices":[{"index":0,"delta":{"content":"","tool_calls":{}}}]}\n\n', {}, null]
  ]
  for (const [name, frame, options, message] of cases) {
    const [obs, seen] = observer()
    const out = await relay([chunk({ content: 'Hi' }), frame, chunk({ content: '' }, 'stop'), 'data: [DONE]\n\n'], new ChatStreamHandler({ includeUsage: true, ...options }, obs, context))
    if (message === null) {
      t.equal(out, chunk({ content: 'Hi' }) + frame + chunk({ content: '' }, 'stop') + 'data: [DONE]\n\n', `${name}: passed through untouched`)
      continue
    }
    const events = out.trim().split('\n\n')
    const error = JSON.parse(events.at(-1)!.slice(6)).error
    t.equal(error.code, 'upstream_protocol_error', name)
    t.match(error.message, message, name)
    t.notOk(out.includes('[DONE]'), `${name}: no [DONE]`)
    t.equal(seen.errors[0]?.errorType, 'upstream_protocol', name)
  }
})

t.test('JSON with spaces (Python json.dumps): usage, finish_reason, first token and tool calls are all seen', async t => {
  const spaced = (text: string) => text.replace(/":/g, '": ').replace(/,"/g, ', "')
  const tabbed = (text: string) => text.replace(/":/g, '"\t:\t')
  for (const [name, write] of [['spaces', spaced], ['tabs', tabbed]] as const) {
    const [obs, seen] = observer()
    const upstream = [chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hi' }), chunk({ content: '' }, 'stop'), usageChunk].map(write).join('')
    // No [DONE]: only a finish_reason that was seen makes the gateway add one rather than report a cut answer.
    const out = await relay([upstream], new ChatStreamHandler({ includeUsage: false }, obs, context))
    t.same(seen.usage, [{ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 }], `${name}: usage recorded`)
    t.equal(seen.firstToken, 1, `${name}: first token noticed`)
    t.ok(out.endsWith('data: [DONE]\n\n'), `${name}: finish_reason seen, the answer is complete`)
    t.notOk(out.includes('prompt_tokens'), `${name}: usage chunk dropped, as the client did not ask for it`)
  }
  const [obs] = observer()
  const call = { index: 0, id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{"path": ' } }
  const continuation = { index: 0, id: '', type: 'function', function: { arguments: '"a.ts"}' } }
  const out = await relay([chunk({ content: null, tool_calls: [call] }), chunk({ tool_calls: [continuation] }), chunk({}, 'tool_calls'), 'data: [DONE]\n\n'].map(spaced), new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.notOk(out.includes('"id":""') || out.includes('"id": ""'), 'tool-call deltas normalised')
})

t.test('a chunk that must be parsed is read whole when its data spans several lines', async t => {
  const [obs, seen] = observer()
  const multiLine = 'data: {"id":"chatcmpl-1","choices":[],\ndata: "usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}\n\n'
  const out = await relay([chunk({ content: 'Hi' }, 'stop'), multiLine, 'data: [DONE]\n\n'], new ChatStreamHandler({ includeUsage: true }, obs, context))
  t.same(seen.usage, [{ prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 }])
  t.ok(out.includes('"usage":{"prompt_tokens":4'))
})

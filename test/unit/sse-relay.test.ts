import t from 'tap'
import { PassThrough } from 'node:stream'
import { frameEnd, SseRelay, type FrameHandler } from '../../src/sse/relay.ts'
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

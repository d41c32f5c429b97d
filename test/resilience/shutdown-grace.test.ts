import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { postJson, readEvents, startStack, user } from '../helper.ts'

// Streams still open when the shutdown grace period (SHUTDOWN_GRACE_MS) runs out end with one error event and a
// clean end of the response, and their upstream requests are closed (issue 9). test/resilience/process.test.ts
// checks the same through SIGTERM on a real process.

/** Starts close() as src/server.ts does: keep-alive connections are closed as they become idle. */
function shutDown (gateway: FastifyInstance) {
  const sweep = setInterval(() => gateway.server.closeIdleConnections(), 50)
  return gateway.close().finally(() => clearInterval(sweep))
}

const SHUTTING_DOWN = {
  message: 'The gateway is shutting down and its grace period (SHUTDOWN_GRACE_MS) ran out before this answer was complete. Retry the request.',
  type: 'server_error',
  param: null,
  code: 'gateway_shutting_down'
}

t.test('close(): a stream that outlives the grace period gets one error event; one that finishes in time is untouched', async t => {
  const { gateway, baseURL, sim } = await startStack(t, { env: { SHUTDOWN_GRACE_MS: '300' } })
  const stalled = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { stall: 'after_first' } })
  const quick = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('one two three'), stream: true, sim: { intervalMs: 20 } })
  const reading = [readEvents(stalled), readEvents(quick)]
  const closedAt = performance.now()
  const closing = shutDown(gateway)
  const [cut, finished] = await Promise.all(reading)
  t.ok(performance.now() - closedAt >= 280, 'the stalled stream ran on for the grace period')
  t.equal(cut.length, 2, 'the first chunk, then one event')
  t.same(JSON.parse(cut[1].data), { error: SHUTTING_DOWN })
  t.equal(finished.at(-1)?.data, '[DONE]', 'the stream that finished within the grace period ended as usual')
  await closing
  t.equal(sim.requests.filter(rec => rec.clientClosedAt !== undefined).length, 1, 'the stalled upstream request was closed')
})

t.test('close(): a legacy request with several prompts gets one error event, and every upstream is closed', async t => {
  // Nothing reaches the client before the error (the first chunk is an empty role chunk): a heartbeat sends the headers.
  const { gateway, baseURL, sim } = await startStack(t, { env: { SHUTDOWN_GRACE_MS: '200', HEARTBEAT_INTERVAL_MS: '100' } })
  const res = await postJson(`${baseURL}/completions`, { model: 'qwen-plus', prompt: ['a', 'b', 'c'], stream: true, sim: { stall: 'after_first' } })
  const reading = readEvents(res)
  for (let i = 0; i < 3; i++) await sim.waitFor('request')
  const closing = shutDown(gateway)
  const events = await reading
  t.same(events.map(event => JSON.parse(event.data)), [{ error: SHUTTING_DOWN }])
  await closing
  t.same(sim.requests.map(rec => rec.clientClosedAt !== undefined), [true, true, true])
})

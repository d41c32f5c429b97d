import t from 'tap'
import { postJson, readEvents, user } from '../helper.ts'
import { spawnGateway } from '../process-helper.ts'
import { startSimulator } from '../simulator/index.ts'

t.test('SIGTERM: no new requests, streams in flight finish, then a clean exit', async t => {
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, SHUTDOWN_GRACE_MS: '10000', LOG_LEVEL: 'info' })
  const running = [1, 2, 3].map(i => postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user(`stream ${i} of three`), stream: true, sim: { intervalMs: 80 } }).then(readEvents))
  await sim.waitFor('request')
  await sim.waitFor('request')
  await sim.waitFor('request')
  const signalledAt = performance.now()
  gateway.child.kill('SIGTERM')
  const results = await Promise.all(running)
  for (const events of results) {
    t.equal(events.at(-1)?.data, '[DONE]', 'the stream finished after SIGTERM')
    t.ok(events.length > 10)
  }
  t.ok(results.every(events => events.at(-1)!.at > 300), 'they were still running when the signal came')
  const refused = await fetch(`${gateway.origin}/health`).then(res => res.status, () => 'refused')
  t.ok(refused === 'refused' || refused === 503, `new requests are refused (${refused})`)
  t.equal(await gateway.exited, 0)
  t.ok(performance.now() - signalledAt < 5000)
  t.match(gateway.output(), /"signal":"SIGTERM".*shutting down/)
})

t.test('a stream that outlives the grace period ends with an error event, then the process exits', async t => {
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, SHUTDOWN_GRACE_MS: '500', LOG_LEVEL: 'info' })
  const res = await postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('x'), stream: true, sim: { stall: 'after_first' } })
  const reading = readEvents(res).catch(error => `the response body was cut: ${String(error)}`)
  await sim.waitFor('request')
  const signalledAt = performance.now()
  gateway.child.kill('SIGTERM')
  const events = await reading
  const endedAfter = performance.now() - signalledAt
  const code = await gateway.exited
  const took = performance.now() - signalledAt
  t.ok(took < 3000, `exited ${took.toFixed(0)} ms after SIGTERM with a stalled stream open`)
  t.equal(code, 0, 'a clean exit once the stream was ended')
  if (typeof events === 'string') return t.fail(events)
  t.ok(endedAfter >= 450, `the stream ran on for the grace period (${endedAfter.toFixed(0)} ms)`)
  t.match(JSON.parse(events[0].data), { choices: [{ delta: { role: 'assistant' } }] }, 'what the upstream sent reached the client')
  t.equal(events.length, 2, 'then one more event')
  t.same(JSON.parse(events[1].data), {
    error: {
      message: 'The gateway is shutting down and its grace period (SHUTDOWN_GRACE_MS) ran out before this answer was complete. Retry the request.',
      type: 'server_error',
      param: null,
      code: 'gateway_shutting_down'
    }
  }, 'an error event in the OpenAI envelope, and no [DONE] (wire contract §2.7)')
  t.ok((await sim.waitFor('client-closed').catch(() => null))?.clientClosedAt, 'the upstream request was closed')
  t.match(gateway.output(), /"streams":1,"graceMs":500,"msg":"shutdown grace period over: open streams ended with an error event"/)
})

t.test('no key ever reaches the logs', async t => {
  const upstreamKeys = ['sk-upstream-refused-0001', 'sk-upstream-working-0002']
  const clientKeys = ['client-key-alpha-0003', 'client-key-beta-0004']
  const wrongKey = 'wrong-client-key-0005'
  const sim = await startSimulator({ apiKeys: [upstreamKeys[1]] })
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, {
    DASHSCOPE_BASE_URL: sim.url,
    DASHSCOPE_API_KEY: upstreamKeys.join(','),
    GATEWAY_API_KEYS: clientKeys.join(','),
    RATE_LIMIT_RPM: '100',
    LOG_LEVEL: 'trace'
  })
  const auth = (key: string) => ({ authorization: `Bearer ${key}` })
  const scenario = [
    postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') }, auth(clientKeys[0])),
    postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi'), stream: true }, auth(clientKeys[1])),
    postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') }, auth(wrongKey)),
    postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') }, { 'x-api-key': wrongKey }),
    postJson(`${gateway.baseURL}/chat/completions?api_key=${wrongKey}`, { model: 'qwen-plus', messages: user('hi') }, auth(clientKeys[0])),
    postJson(`${gateway.baseURL}/completions`, { model: 'qwen-plus', prompt: 'x', sim: { error: 'invalid_api_key' } }, auth(clientKeys[0])),
    postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: 'not an array' }, auth(clientKeys[0])),
    fetch(`${gateway.baseURL}/models`, { headers: auth(clientKeys[0]) })
  ]
  const answers = await Promise.all(scenario.map(async pending => (await pending).text()))
  answers.push(await (await fetch(`${gateway.origin}/health`)).text(), await (await fetch(`${gateway.origin}/metrics`)).text())
  gateway.child.kill('SIGTERM')
  await gateway.exited
  const logs = gateway.output()
  t.ok(logs.split('\n').length > 8, 'the scenario was logged')
  t.match(logs, /upstream key set aside/, 'the refused upstream key was noticed')
  for (const key of [...upstreamKeys, ...clientKeys, wrongKey]) {
    t.notOk(logs.includes(key), `${key} is not in the logs`)
    t.notOk(answers.some(answer => answer.includes(key)), `${key} is not in any answer`)
  }
})

t.test('a client that hangs up is logged as such, not as a gateway error', async t => {
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, LOG_LEVEL: 'info' })
  // Before the upstream answered, and after the stream began.
  for (const scenario of [{ stall: 'headers' }, { stall: 'after_first' }]) {
    const controller = new AbortController()
    fetch(`${gateway.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'qwen-plus', messages: user('x'), stream: true, sim: scenario }),
      signal: controller.signal
    }).catch(() => {})
    await sim.waitFor('request')
    await new Promise(resolve => setTimeout(resolve, 50))
    controller.abort()
    await sim.waitFor('client-closed')
  }
  const logs = await gateway.waitForOutput(/(client closed the connection before the answer was complete[\s\S]*){2}/)
  t.match(logs, /upstream call aborted: the client closed the connection/)
  t.notMatch(logs, /"level":(50|60)/, 'no error-level line')
})

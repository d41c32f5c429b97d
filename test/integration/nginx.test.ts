import t, { type Test } from 'tap'
import { Agent } from 'node:http'
import { build, postJson, startStack, user } from '../helper.ts'
import { startSimulator } from '../simulator/index.ts'
import { canUseSourceAddress, rawRequest, readSse, startRecorder } from './http.ts'
import {
  GRAFANA, REPLICA_ALIAS, checkNginxConf, freePort, inCI, readDeploy, renderNginxConf, replicaAddresses, requireBinary, startNginx, tempDir
} from './servers.ts'

// deploy/nginx.conf, rendered for loopback ports, in front of real gateways and the upstream simulator.

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'qwen-plus', messages: user(content), ...extra })

t.test('nginx -t accepts the shipped nginx.conf rendered for loopback', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const dir = await tempDir(t, 'nginx-check')
  const config = renderNginxConf(await readDeploy('nginx.conf'), {
    dir,
    listenPort: await freePort(),
    resolver: '127.0.0.1:53',
    ports: { [REPLICA_ALIAS]: 9, [GRAFANA]: 9 }
  })
  const result = await checkNginxConf(config, dir)
  for (const line of result.stderr.trim().split('\n')) t.comment(line)
  t.equal(result.code, 0, 'nginx -t exits 0')
  t.match(result.stderr, /syntax is ok/)
  t.match(result.stderr, /test is successful/)
  t.notMatch(result.stderr, /\[(emerg|alert|crit|error)\]/, 'no errors')
})

t.test('a stream through nginx arrives chunk by chunk, before the upstream has finished', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const { origin, sim } = await startStack(t)
  const nginx = await startNginx(t, { services: replicaAddresses(origin) })
  const sentAt = performance.now()
  const res = await postJson(`${nginx.origin}/v1/chat/completions`, chat('one two three four five six seven eight', { stream: true, sim: { intervalMs: 60 } }))
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  const read = await readSse(res, sentAt)
  t.notOk(read.error, 'the stream ended cleanly')
  const upstream = sim.requests.at(-1)!
  const finishedAfter = upstream.finishedAt! - sentAt
  const content = read.events.filter(event => event.data !== '[DONE]' && JSON.parse(event.data).choices[0]?.delta?.content)
  t.ok(content.length >= 10, `${content.length} content events`)
  t.ok(content[0].at < finishedAfter - 300,
    `the first content event (${content[0].at.toFixed(0)} ms) reached the client well before the simulator finished (${finishedAfter.toFixed(0)} ms)`)
  const gaps = content.slice(1).map((event, i) => event.at - content[i].at)
  const spread = gaps.filter(gap => gap > 20).length
  t.ok(spread >= gaps.length - 2, `events arrive spread out as produced, not batched: gaps ${gaps.map(gap => gap.toFixed(0)).join(', ')} ms`)
  const text = content.map(event => JSON.parse(event.data).choices[0].delta.content).join('')
  t.equal(text, 'Hello from the Qwen simulator! You said: one two three four five six seven eight')
  t.equal(read.events.at(-1)?.data, '[DONE]')
})

t.test('Responses and Anthropic streams through nginx arrive event by event, before the upstream has finished', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const { origin, sim } = await startStack(t)
  const nginx = await startNginx(t, { services: replicaAddresses(origin) })
  const words = 'one two three four five six seven eight'
  // Set on the simulator: the Anthropic translation does not forward fields it does not know (such as `sim`).
  sim.setOverride(() => ({ intervalMs: 60 }))
  const families: Array<[string, object, (payload: any) => string | undefined]> = [
    ['/v1/responses', { model: 'qwen-plus', input: words }, payload => payload.type === 'response.output_text.delta' ? payload.delta : undefined],
    ['/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 256, messages: user(words) }, payload => payload.type === 'content_block_delta' ? payload.delta.text : undefined]
  ]
  for (const [path, body, textOf] of families) {
    const sentAt = performance.now()
    const res = await postJson(`${nginx.origin}${path}`, { ...body, stream: true })
    t.equal(res.status, 200, path)
    const read = await readSse(res, sentAt)
    t.notOk(read.error, `${path}: the stream ended cleanly`)
    const finishedAfter = sim.requests.at(-1)!.finishedAt! - sentAt
    const deltas = read.events.map(event => ({ at: event.at, text: textOf(JSON.parse(event.data)) })).filter(event => event.text !== undefined)
    t.ok(deltas.length >= 10, `${path}: ${deltas.length} text deltas`)
    t.ok(deltas[0].at < finishedAfter - 300, `${path}: the first delta (${deltas[0].at.toFixed(0)} ms) came well before the simulator finished (${finishedAfter.toFixed(0)} ms)`)
    const gaps = deltas.slice(1).map((event, i) => event.at - deltas[i].at)
    t.ok(gaps.filter(gap => gap > 20).length >= gaps.length - 2, `${path}: deltas spread out as produced: gaps ${gaps.map(gap => gap.toFixed(0)).join(', ')} ms`)
    t.equal(deltas.map(event => event.text).join(''), `Hello from the Qwen simulator! You said: ${words}`)
  }
})

t.test('a long-thinking stream survives nginx\'s read timeout thanks to heartbeats', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  // nginx gives up on a replica silent for 1 s here; the model thinks for 2.5 s before its first chunk.
  const { origin } = await startStack(t, { env: { HEARTBEAT_INTERVAL_MS: '300' } })
  const nginx = await startNginx(t, { services: replicaAddresses(origin), proxyReadTimeout: '1s' })
  const sentAt = performance.now()
  const res = await postJson(`${nginx.origin}/v1/chat/completions`, chat('think hard', { stream: true, sim: { firstChunkDelayMs: 2500, intervalMs: 20 } }))
  t.equal(res.status, 200)
  const read = await readSse(res, sentAt)
  t.notOk(read.error, `the stream was not cut${read.error ? `: ${read.error.message}` : ''}`)
  const firstData = read.events[0]?.at ?? Infinity
  t.ok(firstData > 2000, `the first data event came after the thinking pause (${firstData.toFixed(0)} ms)`)
  const beforeFirst = read.comments.filter(comment => comment.at < firstData)
  t.ok(beforeFirst.length >= 4, `${beforeFirst.length} heartbeat comments crossed nginx while the model was silent`)
  const content = read.events.filter(event => event.data !== '[DONE]').map(event => JSON.parse(event.data).choices[0]?.delta?.content ?? '').join('')
  t.equal(content, 'Hello from the Qwen simulator! You said: think hard')
  t.equal(read.events.at(-1)?.data, '[DONE]', 'the stream completes with [DONE]')
})

t.test('without heartbeats the same silence is cut by nginx: the rendered timeout is real', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  // The gateway's default heartbeat interval is far longer than this test's 1 s read timeout.
  const { origin } = await startStack(t)
  const nginx = await startNginx(t, { services: replicaAddresses(origin), proxyReadTimeout: '1s' })
  const sentAt = performance.now()
  const res = await postJson(`${nginx.origin}/v1/chat/completions`, chat('think hard', { stream: true, sim: { firstChunkDelayMs: 2500 } }))
  const read = await readSse(res, sentAt)
  t.not(read.events.at(-1)?.data, '[DONE]', 'no [DONE]')
  if (res.status === 200) {
    t.ok(read.error, `nginx cut the stream (${read.error?.message})`)
  } else {
    t.equal(res.status, 504, 'nginx timed out before the response headers')
  }
  t.ok(performance.now() - sentAt < 2400, 'nginx gave up before the first chunk was due')
})

t.test('nginx forwards the client\'s request id, or its own, through the gateway to the upstream', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const { origin, sim } = await startStack(t)
  const nginx = await startNginx(t, { services: replicaAddresses(origin) })

  const mine = await postJson(`${nginx.origin}/v1/chat/completions`, chat('hi'), { 'x-request-id': 'client-trace-42' })
  await mine.text()
  t.equal(mine.headers.get('x-request-id'), 'client-trace-42', 'the client\'s id comes back')
  t.equal(sim.requests.at(-1)?.headers['x-request-id'], 'client-trace-42', 'and reached the upstream')

  const generated = await postJson(`${nginx.origin}/v1/chat/completions`, chat('hi'))
  await generated.text()
  const id = generated.headers.get('x-request-id') ?? ''
  t.match(id, /^[0-9a-f]{32}$/, 'without one, nginx\'s $request_id is used')
  t.equal(sim.requests.at(-1)?.headers['x-request-id'], id, 'the same id reached the upstream')

  const unsafe = await postJson(`${nginx.origin}/v1/chat/completions`, chat('hi'), { 'x-request-id': 'two words<script>' })
  await unsafe.text()
  t.match(unsafe.headers.get('x-request-id'), /^[0-9a-f]{32}$/, 'an id that is not a plain token is replaced by nginx\'s')

  const log = nginx.accessLog().filter(entry => entry.uri === '/v1/chat/completions')
  t.same(log.map(entry => entry.request_id), ['client-trace-42', id, unsafe.headers.get('x-request-id')], 'nginx\'s access log carries the same ids')
  t.same(log.map(entry => entry.status), [200, 200, 200])
})

t.test('nginx speaks HTTP/1.1 to the replicas and sets the forwarding headers itself', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const recorder = await startRecorder(t)
  const nginx = await startNginx(t, { services: replicaAddresses(recorder.origin) })
  // One client connection, so both requests go through the same nginx worker.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  const spoofed = { 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9', connection: 'keep-alive' }
  const first = await rawRequest(nginx.origin, '/v1/models', { headers: spoofed, agent })
  const second = await rawRequest(nginx.origin, '/v1/models', { headers: spoofed, agent })
  t.equal(first.status, 200)
  t.equal(second.status, 200)
  const [a, b] = recorder.calls
  t.equal(a.httpVersion, '1.1', 'HTTP/1.1 upstream')
  t.not(a.headers.connection, 'close', 'no "Connection: close" (proxy_set_header Connection "")')
  // The price of resolving the replicas at request time on nginx 1.22 (deploy/nginx.conf): no keepalive pool.
  t.not(a.remotePort, b.remotePort, 'each request opens its own connection to the replica')
  t.equal(a.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the real client address, the spoofed one dropped')
  t.equal(a.headers['x-real-ip'], '127.0.0.1')
  t.equal(a.headers['x-forwarded-proto'], 'http')
  t.match(a.headers['x-request-id'], /^[0-9a-f]{32}$/)
})

t.test('/metrics and Grafana answer internal addresses only; /health is open', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const { origin } = await startStack(t)
  const grafana = await startRecorder(t)
  const nginx = await startNginx(t, { services: { ...replicaAddresses(origin), [GRAFANA]: [new URL(grafana.origin).host] } })

  const internal = await rawRequest(nginx.origin, '/metrics')
  t.equal(internal.status, 200, '127.0.0.1 may read /metrics')
  t.match(internal.body, /^# HELP qwen_gateway_/m)
  const spoofedIn = await rawRequest(nginx.origin, '/metrics', { headers: { 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9' } })
  t.equal(spoofedIn.status, 200, 'a forwarded-for header does not change the decision for 127.0.0.1')
  const grafanaIn = await rawRequest(nginx.origin, '/grafana/api/health')
  t.equal(grafanaIn.status, 200, '127.0.0.1 reaches Grafana')
  t.equal(grafana.calls.at(-1)?.url, '/grafana/api/health', 'Grafana gets the /grafana/ path as is (serve_from_sub_path)')

  // 127.0.0.2 is loopback too, but not in the allow list: it plays an outside client.
  const outside = '127.0.0.2'
  if (!await canUseSourceAddress(outside, nginx.port)) {
    if (inCI()) t.fail(`cannot send from ${outside}: the deny rule is untested`)
    else t.comment(`SKIP the deny checks: this machine cannot send from ${outside}`)
    return
  }
  const denied = await rawRequest(nginx.origin, '/metrics', { localAddress: outside })
  t.equal(denied.status, 403, `${outside} gets a 403 for /metrics`)
  t.match(denied.headers['content-type'], /^application\/json/)
  t.equal(JSON.parse(denied.body).error.code, 'forbidden', 'in the OpenAI error envelope')
  t.equal(denied.headers['x-gateway-error-source'], 'proxy')
  for (const path of ['/metrics/', '//metrics', '/%6Detrics', '/v1/../metrics', '/metrics?format=text', '/./metrics', '/METRICS']) {
    const res = await rawRequest(nginx.origin, path, { localAddress: outside })
    t.ok(res.status !== 200 && !res.body.includes('qwen_gateway_'), `${path}: no metrics from outside (status ${res.status})`)
  }
  const spoofedOut = await rawRequest(nginx.origin, '/metrics', { localAddress: outside, headers: { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '10.0.0.1' } })
  t.equal(spoofedOut.status, 403, 'a spoofed X-Forwarded-For or X-Real-IP does not open /metrics: the real address decides')
  const grafanaOut = await rawRequest(nginx.origin, '/grafana/api/health', { localAddress: outside })
  t.equal(grafanaOut.status, 403, `${outside} gets a 403 for Grafana`)
  const live = await rawRequest(nginx.origin, '/grafana/api/live/ws', { localAddress: outside })
  t.equal(live.status, 403, 'and for Grafana Live')
  const health = await rawRequest(nginx.origin, '/health', { localAddress: outside })
  t.equal(health.status, 200, '/health is open to everyone')
  t.equal(JSON.parse(health.body).status, 'ok')
})

t.test('bodies up to BODY_LIMIT pass nginx; larger ones get nginx\'s 413 in the OpenAI envelope', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const { origin, sim } = await startStack(t)
  const nginx = await startNginx(t, { services: replicaAddresses(origin) })
  const limit = 32 * 1024 * 1024 // BODY_LIMIT's default and client_max_body_size 32m
  const sized = (bytes: number) => {
    const head = '{"model":"qwen-plus","sim":{"reply":"ok"},"messages":[{"role":"user","content":"'
    const tail = '"}]}'
    return head + 'x'.repeat(bytes - head.length - tail.length) + tail
  }
  const atLimit = await rawRequest(nginx.origin, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: sized(limit) })
  t.equal(atLimit.status, 200, 'exactly BODY_LIMIT bytes reach the gateway and are answered')
  t.equal(sim.requests.at(-1)?.raw.length, limit, 'the whole body reached the upstream')
  const over = await rawRequest(nginx.origin, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: sized(limit + 1) })
  t.equal(over.status, 413, 'one byte more is refused by nginx')
  t.equal(over.headers['x-gateway-error-source'], 'proxy')
  t.match(JSON.parse(over.body), { error: { type: 'invalid_request_error', code: 'request_too_large' } })
})

/** A gateway in front of the simulator on a chosen loopback address and port: replicas share a port, as in compose. */
async function replicaOn (t: Test, host: string, port: number) {
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await build(t, { DASHSCOPE_BASE_URL: sim.url })
  await gateway.listen({ host, port })
  return { sim, gateway, origin: `http://${host}:${port}` }
}

t.test('requests are spread over every address of the replica name, and keep succeeding when one goes away', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const port = await freePort()
  const one = await replicaOn(t, '127.0.0.2', port)
  const two = await replicaOn(t, '127.0.0.3', port)
  const nginx = await startNginx(t, { services: replicaAddresses(one.origin, two.origin) })
  const send = async () => {
    const res = await postJson(`${nginx.origin}/v1/chat/completions`, chat('hi'))
    await res.text()
    return res.status
  }
  const before: number[] = []
  for (let i = 0; i < 12; i++) before.push(await send())
  t.same(before, Array(12).fill(200))
  // nginx starts from a random address of the answer: both are used (all 12 on one has a chance of 1 in 2048).
  t.ok(one.sim.requests.length >= 1 && two.sim.requests.length >= 1, `both replicas served (${one.sim.requests.length} and ${two.sim.requests.length})`)

  await one.gateway.close()
  const after: number[] = []
  for (let i = 0; i < 12; i++) after.push(await send())
  t.same(after, Array(12).fill(200), 'every request succeeded on the remaining replica')
  const retried = nginx.accessLog().filter(entry => entry.upstream_addr === `${new URL(one.origin).host}, ${new URL(two.origin).host}`)
  t.ok(retried.length >= 1, `nginx tried the closed replica and moved on (${retried.length} request(s) retried)`)
  t.ok(retried.every(entry => entry.status === 200 && /^502, 200$/.test(entry.upstream_status)), 'a refused connection shows as 502, then the other replica\'s 200')
})

t.test('a replica name that does not resolve is nginx\'s 502 in the envelope, and nginx still runs', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const { origin } = await startStack(t)
  const nginx = await startNginx(t, { services: replicaAddresses(origin) })
  nginx.dns.answer(REPLICA_ALIAS.split(':')[0], [])
  // nginx caches the previous answer for 2 s (valid=2s); until then this name still resolves.
  let res = await rawRequest(nginx.origin, '/v1/models')
  const deadline = performance.now() + 6_000
  while (res.status === 200 && performance.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    res = await rawRequest(nginx.origin, '/v1/models')
  }
  t.equal(res.status, 502, 'no address: 502')
  t.match(JSON.parse(res.body), { error: { type: 'server_error', code: 'gateway_unavailable' } })
  t.equal(res.headers['x-gateway-error-source'], 'proxy')
  t.match(nginx.output(), /gateway-replicas could not be resolved/, 'nginx says why in its error log')
  nginx.dns.answer(REPLICA_ALIAS.split(':')[0], ['127.0.0.1'])
  const back = await rawRequest(nginx.origin, '/v1/models')
  const until = performance.now() + 6_000
  let status = back.status
  while (status !== 200 && performance.now() < until) {
    await new Promise(resolve => setTimeout(resolve, 250))
    status = (await rawRequest(nginx.origin, '/v1/models')).status
  }
  t.equal(status, 200, 'once the name resolves again, requests pass without restarting nginx')
})

t.test('nginx answers 502 in the OpenAI envelope when no replica is reachable', async t => {
  if (requireBinary(t, 'nginx') === undefined) return
  const nginx = await startNginx(t, { services: replicaAddresses(`http://127.0.0.1:${await freePort()}`) })
  const res = await rawRequest(nginx.origin, '/v1/models')
  t.equal(res.status, 502)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['x-gateway-error-source'], 'proxy')
  t.match(JSON.parse(res.body), { error: { type: 'server_error', code: 'gateway_unavailable' } })
})

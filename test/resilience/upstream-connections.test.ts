import t from 'tap'
import { postJson, readEvents, startStack, user } from '../helper.ts'
import { spawnGateway } from '../process-helper.ts'
import { startSimulator, type RecordedRequest } from '../simulator/index.ts'

// An LLM stream holds its upstream connection for its whole life. A cap on connections therefore queues streams:
// there is none by default, and a configured one shows in a metric and in the log.

const stream = (i: number) => ({ model: 'qwen-plus', messages: user(`stream ${i}`), stream: true, sim: { reply: 'one two three four five six seven eight', intervalMs: 100 } })

/** The most upstream requests that were open at the same moment. */
function mostAtOnce (requests: RecordedRequest[]): number {
  const edges = requests.flatMap(request => [[request.startedAt, 1], [request.finishedAt ?? Infinity, -1]])
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let open = 0
  let most = 0
  for (const [, step] of edges) most = Math.max(most, open += step)
  return most
}

t.test('by default every concurrent stream reaches the upstream at once: nothing queues', async t => {
  const { baseURL, sim } = await startStack(t)
  // Each stream stays open upstream for two seconds at least, longer than sending all of them takes.
  const long = (i: number) => ({ ...stream(i), sim: { ...stream(i).sim, firstChunkDelayMs: 2000 } })
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) => postJson(`${baseURL}/chat/completions`, long(i)).then(res => readEvents(res))))
  t.ok(results.every(events => events.at(-1)?.data === '[DONE]'), 'all 300 streams completed')
  const most = mostAtOnce(sim.requests)
  t.equal(most, 300, `all 300 were open upstream at the same time (${most})`)
})

t.test('a configured cap is enforced where it is visible: a gauge of waiting requests and a warning', async t => {
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, UPSTREAM_CONNECTIONS: '4', LOG_LEVEL: 'info' })
  const running = Array.from({ length: 7 }, (_, i) => postJson(`${gateway.baseURL}/chat/completions`, stream(i)).then(res => readEvents(res)))
  for (let i = 0; i < 4; i++) await sim.waitFor('request')
  await new Promise(resolve => setTimeout(resolve, 100))
  const metrics = await (await fetch(`${gateway.origin}/metrics`)).text()
  t.match(metrics, /^qwen_gateway_upstream_requests_waiting\{upstream="dashscope"\} 3$/m, 'three requests wait for one of the four connections')
  const results = await Promise.all(running)
  t.ok(results.every(events => events.at(-1)?.data === '[DONE]'), 'and are served once a connection frees up')
  t.equal(mostAtOnce(sim.requests.filter(request => request.path.endsWith('/chat/completions'))), 4)
  const logs = await gateway.waitForOutput(/upstream connections \(UPSTREAM_CONNECTIONS\) is busy/)
  t.equal(logs.split('UPSTREAM_CONNECTIONS) is busy').length - 1, 1, 'said once, not once per request')
  const after = await (await fetch(`${gateway.origin}/metrics`)).text()
  t.match(after, /^qwen_gateway_upstream_requests_waiting\{upstream="dashscope"\} 0$/m)
})

import t from 'tap'
import type { AddressInfo } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { startSimulator } from '../simulator/index.ts'
import { build, forEachSseBlock, postJson } from '../helper.ts'

// A stream can last minutes while its request body (an agent's runs to megabytes) sits in memory. Once the upstream
// has accepted the request, the gateway must let go of it, raw and parsed, for every API family.

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

async function collected (ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
    await new Promise(resolve => setImmediate(resolve))
    gc()
  }
  return ref.deref() === undefined
}

const longSystemPrompt = 'You are a coding agent. '.repeat(20_000)
const families = [
  { path: '/v1/chat/completions', body: { model: 'qwen-plus', stream: true, messages: [{ role: 'system', content: longSystemPrompt }, { role: 'user', content: 'hi' }] } },
  { path: '/v1/messages', body: { model: 'qwen-plus', max_tokens: 100, stream: true, system: longSystemPrompt, messages: [{ role: 'user', content: 'hi' }] } },
  { path: '/v1/responses', body: { model: 'qwen-plus', stream: true, store: false, instructions: longSystemPrompt, input: 'hi' } }
]

for (const { path, body } of families) {
  t.test(`${path}: a stream in progress no longer holds its request body`, async t => {
    const sim = await startSimulator({ defaults: { reply: 'one two three four five six seven eight', intervalMs: 150 } })
    t.after(() => sim.close())
    const bodies: Array<WeakRef<object>> = []
    const raws: Array<WeakRef<object>> = []
    const server = await build(t, { DASHSCOPE_BASE_URL: sim.url }, server => server.addHook('preHandler', async request => {
      if (request.body && request.rawBody) {
        bodies.push(new WeakRef(request.body))
        raws.push(new WeakRef(request.rawBody))
      }
    }))
    await server.listen({ port: 0, host: '127.0.0.1' })
    const { port } = server.server.address() as AddressInfo

    const response = await postJson(`http://127.0.0.1:${port}${path}`, body)
    t.equal(response.status, 200)
    let blocks = 0
    let check: Promise<{ parsed: boolean, raw: boolean, at: number }> | undefined
    await forEachSseBlock(response, () => {
      // Mid-stream: the upstream is still sending, the request is still open.
      if (++blocks === 3) {
        check = Promise.all([collected(bodies[0]), collected(raws[0])]).then(([parsed, raw]) => ({ parsed, raw, at: performance.now() }))
      }
    })
    const endedAt = performance.now()
    t.equal(bodies.length, 1)
    if (check === undefined) return t.fail('the stream was too short to look mid-stream')
    const { parsed, raw, at: checkedAt } = await check
    t.ok(parsed, 'the parsed body was collected while the stream went on')
    t.ok(raw, 'the raw body was collected while the stream went on')
    t.ok(checkedAt < endedAt, 'collected before the stream ended')
  })
}

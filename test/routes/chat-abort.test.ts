import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { postJson, startStack, user, type Stack } from '../helper.ts'

const chat = (sim: object, extra: object = {}) => ({ model: 'qwen-plus', messages: user('x'), sim, ...extra })

async function inFlight (stack: Stack) {
  return (await (await fetch(`${stack.origin}/health`)).json() as any).in_flight
}

/** Sends a request, lets `abortAfter` resolve, hangs up, and returns how long the upstream took to see it. */
async function hangUp (stack: Stack, url: string, body: object, abortAfter: (res: Promise<Response>) => Promise<unknown>) {
  const controller = new AbortController()
  const pending = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: controller.signal })
  pending.catch(() => {})
  await abortAfter(pending)
  const abortedAt = performance.now()
  controller.abort()
  const upstream = await stack.sim.waitFor('client-closed', 2000)
  return upstream.clientClosedAt! - abortedAt
}

t.test('a client leaving mid-stream aborts the upstream request', async t => {
  const stack = await startStack(t)
  const delay = await hangUp(stack, `${stack.baseURL}/chat/completions`, chat({ intervalMs: 50 }, { stream: true }), async pending => {
    const res = await pending
    const reader = res.body!.getReader()
    await reader.read()
  })
  t.ok(delay < 100, `upstream saw the close ${delay.toFixed(1)} ms after the client left`)
  await sleep(20)
  t.same(await inFlight(stack), { requests: 1, streams: 0 }, 'only the /health request itself is in flight')
})

t.test('a client leaving before the upstream answered aborts it too', async t => {
  const stack = await startStack(t)
  for (const stream of [true, false]) {
    const delay = await hangUp(stack, `${stack.baseURL}/chat/completions`, chat({ stall: 'headers' }, { stream }), async () => {
      await stack.sim.waitFor('request')
    })
    t.ok(delay < 100, `stream=${stream}: upstream saw the close ${delay.toFixed(1)} ms after the client left`)
  }
})

t.test('legacy completions abort every upstream call of the request', async t => {
  const stack = await startStack(t)
  const delay = await hangUp(stack, `${stack.baseURL}/completions`, { model: 'qwen-plus', prompt: ['a', 'b'], stream: true, sim: { intervalMs: 50 } }, async pending => {
    await (await pending).body!.getReader().read()
  })
  t.ok(delay < 100, `first upstream call closed after ${delay.toFixed(1)} ms`)
  await stack.sim.waitFor('client-closed', 2000)
  t.pass('second upstream call closed too')
})

t.test('a request that finishes is never aborted, however long the upstream takes', async t => {
  // Fastify's request.signal fires once a POST body is read (about 200 ms in); the gateway must not use it.
  const stack = await startStack(t)
  const json = await postJson(`${stack.baseURL}/chat/completions`, chat({ ttfbMs: 400 }))
  t.equal(json.status, 200)
  t.equal((await json.json() as any).object, 'chat.completion')

  const stream = await postJson(`${stack.baseURL}/chat/completions`, chat({ firstChunkDelayMs: 400, intervalMs: 10 }, { stream: true }))
  const text = await stream.text()
  t.ok(text.endsWith('data: [DONE]\n\n'))
  t.notOk(stack.sim.requests.some(request => request.clientClosedAt), 'the upstream never saw a close')
  t.equal(stack.sim.requests.filter(request => request.finishedAt).length, 2)
})

t.test('every API family: a client leaving before the upstream answered aborts it, streamed or not', async t => {
  const stack = await startStack(t)
  // Set on the simulator: the Anthropic translation does not forward fields it does not know (such as `sim`).
  stack.sim.setOverride(() => ({ stall: 'headers' }))
  const families: Array<[string, object]> = [
    ['/responses', { model: 'qwen-plus', input: 'x' }],
    ['/messages', { model: 'claude-sonnet-4-5', max_tokens: 64, messages: user('x') }]
  ]
  for (const [path, body] of families) {
    for (const stream of [true, false]) {
      const delay = await hangUp(stack, `${stack.baseURL}${path}`, { ...body, stream }, async () => {
        await stack.sim.waitFor('request')
      })
      t.ok(delay < 100, `${path} stream=${stream}: upstream saw the close ${delay.toFixed(1)} ms after the client left`)
    }
  }
  const delay = await hangUp(stack, `${stack.baseURL}/embeddings`, { model: 'text-embedding-v4', input: ['a'] }, async () => {
    await stack.sim.waitFor('request')
  })
  t.ok(delay < 100, `/embeddings: upstream saw the close ${delay.toFixed(1)} ms after the client left`)
  await sleep(20)
  t.same(await inFlight(stack), { requests: 1, streams: 0 }, 'nothing left in flight')
})

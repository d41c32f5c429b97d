import t from 'tap'
import { Redis } from 'ioredis'
import { postJson, readEvents } from '../helper.ts'
import { spawnGateway } from '../process-helper.ts'
import { skipWithout, startRedis } from '../integration/servers.ts'
import { startSimulator } from '../simulator/index.ts'

// Stored responses in Redis: two gateway instances sharing one real redis-server, as replicas behind nginx do, so a
// conversation continued with previous_response_id (or item_reference) may land on either.

const skip = skipWithout('redis-server')
const reply = (text: string) => `Hello from the Qwen simulator! You said: ${text}`

t.test('previous_response_id, item_reference, GET and DELETE work across two gateways sharing Redis', { skip }, async t => {
  const redis = await startRedis(t)
  const sim = await startSimulator()
  t.after(() => sim.close())
  const env = { DASHSCOPE_BASE_URL: sim.url, DASHSCOPE_API_KEY: 'sk-shared', REDIS_URL: redis.url, RESPONSE_STORE_TTL_SECONDS: '120', LOG_LEVEL: 'info' }
  // Two processes, as two replicas are: nothing shared but Redis (and the upstream keys the reasoning key derives from).
  const [a, b] = (await Promise.all([spawnGateway(t, env), spawnGateway(t, env)])).map(gateway => gateway.baseURL)
  const lastChat = () => sim.requests.filter(request => request.path.endsWith('/chat/completions')).at(-1)!.body
  const create = async (baseURL: string, body: object) => (await postJson(`${baseURL}/responses`, { model: 'qwen-plus', ...body })).json() as Promise<any>

  const first = await create(a, { input: 'first on A', sim: { reasoning: 'Mull it over.' }, include: ['reasoning.encrypted_content'] })
  const second = await create(b, { input: 'second on B', previous_response_id: first.id })
  t.equal(second.status, 'completed', 'replica B found the response replica A stored')
  t.same(lastChat().messages, [
    { role: 'user', content: 'first on A' },
    { role: 'assistant', content: reply('first on A'), reasoning_content: 'Mull it over.' },
    { role: 'user', content: 'second on B' }
  ])

  // A streamed turn on B, continued on A as soon as the stream ends.
  const streamed = await readEvents(await postJson(`${b}/responses`, { model: 'qwen-plus', stream: true, input: 'third on B', previous_response_id: second.id }))
  const completed = JSON.parse(streamed.at(-1)!.data).response
  const fourth = await create(a, { input: 'fourth on A', previous_response_id: completed.id })
  t.equal(fourth.status, 'completed')
  t.equal(lastChat().messages.length, 7, 'four user turns and three answers')

  t.same(await (await fetch(`${b}/responses/${first.id}`)).json(), first, 'GET on the other replica')
  const items = await (await fetch(`${a}/responses/${second.id}/input_items`)).json() as any
  t.same(items.data.map((item: any) => item.content[0].text), ['second on B'])

  const referenced = await create(b, { input: [{ role: 'user', content: 'again' }, { type: 'item_reference', id: first.output[1].id }] })
  t.equal(referenced.status, 'completed', 'item_reference resolved on the other replica')
  t.same(lastChat().messages[1], { role: 'assistant', content: reply('first on A') })

  const client = new Redis(redis.url)
  t.after(() => client.quit())
  const ttl = await client.pttl(`qwen-gateway:response:${first.id}`)
  t.ok(ttl > 100_000 && ttl <= 120_000, `the response expires with RESPONSE_STORE_TTL_SECONDS (${ttl} ms left)`)
  t.ok(await client.pttl(`qwen-gateway:response-item:${first.output[1].id}`) > 100_000, 'its items too')

  t.same(await (await fetch(`${b}/responses/${first.id}`, { method: 'DELETE' })).json(), { id: first.id, object: 'response', deleted: true })
  t.equal((await fetch(`${a}/responses/${first.id}`)).status, 404, 'deleted for every replica')
  t.equal(await client.exists(`qwen-gateway:response-item:${first.output[1].id}`), 0, 'with its items')
  t.equal((await postJson(`${a}/responses`, { model: 'qwen-plus', input: [{ type: 'item_reference', id: first.output[1].id }] })).status, 400)

  const unstored = await create(a, { input: 'private', store: false })
  t.equal((await fetch(`${b}/responses/${unstored.id}`)).status, 404)
  t.equal(await client.exists(`qwen-gateway:response:${unstored.id}`), 0, 'store:false writes nothing to Redis')
})

import t from 'tap'
import { memoryResponseStore, ownedItems, readableBy, storedConversation, type StoredResponse } from '../../src/state/response-store.ts'

// The memory response store: TTL, a byte bound with least-recently-used eviction, items resolvable by id while their
// response is stored, and the chain walked for previous_response_id.

function record (id: string, options: { previous?: string, text?: string } = {}): StoredResponse {
  const core = id.slice(5)
  return {
    response: {
      id,
      object: 'response',
      created_at: 1,
      status: 'completed',
      model: 'm',
      error: null,
      incomplete_details: null,
      usage: null,
      previous_response_id: options.previous ?? null,
      output: [{ type: 'message', id: `msg_${core}_0`, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: options.text ?? `answer ${core}`, annotations: [] }] }]
    },
    input: [{ type: 'message', id: `msg_${core}_in0`, role: 'user', content: `question ${core}` }, { type: 'message', id: 'msg_clients_own', role: 'user', content: 'x' }]
  }
}

t.test('put, get, delete; items owned by a response resolve by id, and go with it', async t => {
  const store = memoryResponseStore({ ttlMs: 60_000, maxBytes: 1 << 20 })
  await store.put(record('resp_a'))
  t.equal((await store.get('resp_a'))?.response.id, 'resp_a')
  t.equal(await store.get('resp_zz'), null)
  const items = await store.items(['msg_a_0', 'msg_a_in0', 'msg_clients_own', 'msg_unknown'], null)
  t.same([...items.keys()].sort(), ['msg_a_0', 'msg_a_in0'], 'its output and the input ids it minted; not ids the client chose')
  t.same(ownedItems(record('resp_a')).map(item => item.id), ['msg_a_in0', 'msg_a_0'])
  t.equal(await store.delete('resp_a'), true)
  t.equal(await store.delete('resp_a'), false)
  t.equal(await store.get('resp_a'), null)
  t.equal((await store.items(['msg_a_0'], null)).size, 0)
  t.equal(store.bytes, 0)
})

t.test('a stored response is a copy: changing what was put or got changes nothing stored', async t => {
  const store = memoryResponseStore({ ttlMs: 60_000, maxBytes: 1 << 20 })
  const put = record('resp_a')
  await store.put(put)
  put.response.status = 'failed'
  const got = (await store.get('resp_a'))!
  t.equal(got.response.status, 'completed')
  got.response.status = 'failed'
  t.equal((await store.get('resp_a'))!.response.status, 'completed')
})

t.test('entries expire after the TTL', async t => {
  let clock = 0
  const store = memoryResponseStore({ ttlMs: 1000, maxBytes: 1 << 20, now: () => clock })
  await store.put(record('resp_a'))
  clock = 999
  t.ok(await store.get('resp_a'))
  clock = 1000
  t.equal(await store.get('resp_a'), null)
  t.equal((await store.items(['msg_a_0'], null)).size, 0)
  t.equal(store.bytes, 0, 'expired entries free their bytes when met')
})

t.test('the byte bound evicts the least recently used first; a response larger than the bound is not kept', async t => {
  const size = JSON.stringify(record('resp_a')).length
  const store = memoryResponseStore({ ttlMs: 60_000, maxBytes: size * 3 })
  for (const id of ['resp_a', 'resp_b', 'resp_c']) await store.put(record(id))
  await store.get('resp_a') // now the most recently used
  await store.put(record('resp_d'))
  t.equal(await store.get('resp_b'), null, 'b was the least recently used')
  for (const id of ['resp_a', 'resp_c', 'resp_d']) t.ok(await store.get(id), `${id} kept`)
  t.ok(store.bytes <= size * 3)
  await store.put(record('resp_huge', { text: 'x'.repeat(size * 4) }))
  t.equal(await store.get('resp_huge'), null)
  t.ok(await store.get('resp_d'), 'and it evicted nothing')
})

t.test('the conversation behind previous_response_id: the chain oldest first, input then output; a missing link named', async t => {
  const store = memoryResponseStore({ ttlMs: 60_000, maxBytes: 1 << 20 })
  await store.put(record('resp_1'))
  await store.put(record('resp_2', { previous: 'resp_1' }))
  await store.put(record('resp_3', { previous: 'resp_2' }))
  const { items, missing } = await storedConversation(store, 'resp_3', null)
  t.equal(missing, null)
  t.same(items.map(item => item.id), ['msg_1_in0', 'msg_clients_own', 'msg_1_0', 'msg_2_in0', 'msg_clients_own', 'msg_2_0', 'msg_3_in0', 'msg_clients_own', 'msg_3_0'])
  await store.delete('resp_1')
  t.same(await storedConversation(store, 'resp_3', null), { items: [], missing: 'resp_1' })
  t.same(await storedConversation(store, 'resp_none', null), { items: [], missing: 'resp_none' })
})

t.test('a response belongs to the client that stored it: others can neither read it, continue it nor reference its items', async t => {
  const store = memoryResponseStore({ ttlMs: 60_000, maxBytes: 1 << 20 })
  await store.put({ ...record('resp_a'), owner: 'team-a' })
  t.ok(readableBy(await store.get('resp_a'), 'team-a'))
  t.equal(readableBy(await store.get('resp_a'), 'team-b'), null)
  t.equal(readableBy(await store.get('resp_a'), null), null)
  t.equal((await store.items(['msg_a_0'], 'team-a')).size, 1)
  t.equal((await store.items(['msg_a_0'], 'team-b')).size, 0)
  t.equal((await storedConversation(store, 'resp_a', 'team-b')).missing, 'resp_a')
  t.equal((await storedConversation(store, 'resp_a', 'team-a')).missing, null)
})

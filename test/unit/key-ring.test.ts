import t from 'tap'
import { KEY_SCOPE, KeyRing, type KeyRingOptions, type Penalty } from '../../src/upstream/key-ring.ts'

const refusal = { status: 401, message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' }

function ring (keys = ['sk-a', 'sk-b'], options: Partial<KeyRingOptions> = {}) {
  const clock = { now: 1_000_000 }
  const changes: Array<{ key: string, scope: string, penalty: Penalty | null }> = []
  const keyRing = new KeyRing(keys, {
    now: () => clock.now,
    random: () => 1,
    maxCooldownMs: 60_000,
    disableMs: 600_000,
    onChange: (entry, scope, penalty) => changes.push({ key: entry.label, scope, penalty }),
    ...options
  })
  return { keyRing, clock, changes }
}

t.test('a refusal for one model leaves the key serving every other model', async t => {
  const { keyRing } = ring(['sk-a'])
  const lease = keyRing.pick('qwen3-max')!
  keyRing.failed(lease, { scope: 'model', reason: 'access_denied', refusal: { ...refusal, status: 403 } })
  t.equal(keyRing.pick('qwen3-max'), null, 'not for the refused model')
  t.equal(keyRing.pick('qwen-plus')?.entry.label, 'key-1', 'still for another')
  t.equal(keyRing.state(keyRing.entries[0]), 'healthy', 'the key itself is healthy')
  t.match(keyRing.blocked('qwen3-max'), { kind: 'refused', reason: 'access_denied', refusal: { status: 403 } })
  t.equal(keyRing.blocked('qwen-plus'), null)
})

t.test('a refused key is set aside for every model', async t => {
  const { keyRing } = ring(['sk-a'])
  keyRing.failed(keyRing.pick('qwen-plus')!, { scope: 'key', reason: 'refused', refusal })
  t.equal(keyRing.pick('qwen-plus'), null)
  t.equal(keyRing.pick('qwen3-max'), null)
  t.equal(keyRing.state(keyRing.entries[0]), 'disabled')
  t.match(keyRing.blocked('qwen3-max'), { kind: 'refused', reason: 'refused', refusal })
})

t.test('rate limits: cooling is worth a retry, and wins over refusals on other keys', async t => {
  const { keyRing, clock } = ring()
  const a = keyRing.pick('m')!
  const b = keyRing.pick('m')!
  t.not(a.entry, b.entry)
  keyRing.failed(a, { scope: 'model', reason: 'rate_limited', retryAfterMs: 5000 })
  keyRing.failed(b, { scope: 'key', reason: 'refused', refusal })
  t.same(keyRing.blocked('m'), { kind: 'cooling', waitMs: 5000 })
  clock.now += 5000
  t.equal(keyRing.pick('m')?.entry.label, a.entry.label, 'usable again once the wait is over')
})

t.test('a success clears only what was recorded before the request started', async t => {
  const { keyRing, clock, changes } = ring(['sk-a'])
  const early = keyRing.pick('m')!
  clock.now += 10
  const late = keyRing.pick('m')!
  clock.now += 10
  keyRing.failed(late, { scope: 'model', reason: 'rate_limited', retryAfterMs: 30_000 })
  clock.now += 10
  keyRing.succeeded(early)
  t.equal(keyRing.pick('m'), null, 'the 429 that came after the early request started still stands')
  t.equal(changes.filter(change => change.penalty === null).length, 0, 'nothing was cleared')

  clock.now += 30_000
  const after = keyRing.pick('m')!
  keyRing.succeeded(after)
  t.equal(keyRing.entries[0].penalties.size, 0, 'a request that started after it clears it')
  t.equal(changes.at(-1)?.penalty, null)
})

t.test('backoff grows on consecutive 429s, not on the concurrent requests of one episode', async t => {
  const { keyRing, clock } = ring(['sk-a'])
  const waits: number[] = []
  for (let episode = 0; episode < 4; episode++) {
    const concurrent = [keyRing.pick('m')!, keyRing.pick('m')!, keyRing.pick('m')!]
    clock.now += 1
    for (const lease of concurrent) keyRing.failed(lease, { scope: 'model', reason: 'rate_limited' })
    const penalty = keyRing.entries[0].penalties.get('m')!
    waits.push(penalty.until - clock.now)
    t.equal(penalty.level, episode + 1, `episode ${episode + 1}: three 429s count once`)
    clock.now = penalty.until
  }
  t.same(waits, [1000, 2000, 4000, 8000], '1 s, 2 s, 4 s, 8 s (random fixed at its top)')
  keyRing.succeeded(keyRing.pick('m')!)
  const fresh = keyRing.pick('m')!
  clock.now += 1
  keyRing.failed(fresh, { scope: 'model', reason: 'rate_limited' })
  t.equal(keyRing.entries[0].penalties.get('m')!.level, 1, 'a success starts the backoff over')
})

t.test('after a refusal runs out, one request probes the key; the others wait for its answer', async t => {
  const { keyRing, clock } = ring(['sk-a'], { disableMs: 1000 })
  keyRing.failed(keyRing.pick('m')!, { scope: 'key', reason: 'refused', refusal })
  clock.now += 1000
  const probe = keyRing.pick('m')
  t.ok(probe, 'one request may try the key again')
  t.same(probe!.probing, [KEY_SCOPE])
  t.equal(keyRing.pick('m'), null, 'a second one may not while the probe is out')
  t.match(keyRing.blocked('m'), { kind: 'refused' }, 'and is told the refusal')
  keyRing.failed(probe!, { scope: 'key', reason: 'refused', refusal })
  t.equal(keyRing.pick('m'), null, 'refused again: set aside again')
  t.equal(keyRing.entries[0].penalties.get(KEY_SCOPE)!.level, 2)

  clock.now += 1000
  const second = keyRing.pick('m')!
  keyRing.release(second)
  t.ok(keyRing.pick('m'), 'a probe that told nothing (a 5xx, a client that left) gives the turn to the next request')
})

t.test('another replica\'s news: newer penalties win, a clear removes only older ones', async t => {
  const { keyRing, changes } = ring(['sk-a'])
  const { fingerprint } = keyRing.entries[0]
  const penalty = (since: number): Penalty => ({ reason: 'rate_limited', since, until: since + 5000, level: 2, refusal: null })
  keyRing.apply(fingerprint, 'm', penalty(1_000_000), 0)
  t.equal(keyRing.pick('m'), null)
  keyRing.apply(fingerprint, 'm', penalty(999_000), 0)
  t.equal(keyRing.entries[0].penalties.get('m')!.since, 1_000_000, 'an older record does not replace a newer one')
  keyRing.apply(fingerprint, 'm', null, 1_000_000)
  t.equal(keyRing.pick('m'), null, 'a success that started before the penalty does not clear it')
  keyRing.apply(fingerprint, 'm', null, 1_000_001)
  t.ok(keyRing.pick('m'), 'a later success does')
  keyRing.apply('unknown', 'm', penalty(1), 0)
  t.equal(changes.length, 0, 'news from elsewhere is not published again')
})

t.test('model scopes per key stay bounded', async t => {
  const { keyRing, clock } = ring(['sk-a'])
  for (let i = 0; i < 300; i++) {
    const lease = keyRing.pick(`model-${i}`)!
    keyRing.failed(lease, { scope: 'model', reason: 'access_denied', refusal })
    clock.now += 1
  }
  t.ok(keyRing.entries[0].penalties.size <= 256, `${keyRing.entries[0].penalties.size} scopes kept`)
  t.equal(keyRing.pick('model-299'), null, 'the newest are kept')
})

t.test('affinity keeps a conversation on one key, and moves it only while that key may not serve', async t => {
  const { keyRing } = ring(['sk-a', 'sk-b', 'sk-c'])
  const home = keyRing.pick('m', 'conversation-1')!.entry
  for (let i = 0; i < 5; i++) t.equal(keyRing.pick('m', 'conversation-1')!.entry, home)
  keyRing.failed(keyRing.pick('m', 'conversation-1')!, { scope: 'model', reason: 'access_denied', refusal })
  t.not(keyRing.pick('m', 'conversation-1')!.entry, home, 'moved for the refused model')
  t.equal(keyRing.pick('other', 'conversation-1')!.entry, home, 'kept for the others')
})

import type { Redis } from 'ioredis'
import type { Penalty } from '../upstream/key-ring.ts'
import { memoryBudgets, redisBudgets, type Budgets } from './budgets.ts'

// State that replicas must agree on: upstream key penalties and client budgets. In memory by default; in Redis
// when REDIS_URL is set. Redis failing never stops the gateway: reads then see nothing (limits fail open),
// writes are dropped, and each replica falls back on what it knows itself.

export interface PenaltyEvent {
  /** `<upstream>:<key fingerprint>:<scope>`, the scope being `*` for the whole key or a model id. */
  id: string
  /** The penalty now in force, or null when a success cleared it. */
  penalty: Penalty | null
  /** With `penalty` null: only penalties recorded before this time are cleared (newer ones still stand). */
  clearedBefore: number
}

export interface SharedState {
  readonly kind: 'memory' | 'redis'
  /** False while Redis is unreachable. */
  available (): boolean
  publishPenalty (event: PenaltyEvent): void
  onPenalty (listener: (event: PenaltyEvent) => void): void
  /** Penalties other replicas recorded that are still remembered, for keys whose `<upstream>:<fingerprint>` is given. */
  loadPenalties (keys: string[]): Promise<PenaltyEvent[]>
  /** Client budgets: requests and tokens per minute. */
  readonly budgets: Budgets
  close (): Promise<void>
}

export function memoryState (now: () => number = Date.now): SharedState {
  return {
    kind: 'memory',
    available: () => true,
    publishPenalty: () => {},
    onPenalty: () => {},
    loadPenalties: async () => [],
    budgets: memoryBudgets(now),
    async close () {}
  }
}

const CHANNEL = 'qwen-gateway:penalties'
const PENALTY_PREFIX = 'qwen-gateway:penalty:'
const penaltyKey = (id: string) => PENALTY_PREFIX + id
// An expired penalty is still remembered this long, so the next failure on any replica backs off further.
const REMEMBER_MS = 600_000
// Deletes a stored penalty only when it is older than the success that clears it: a newer one still stands.
const CLEAR_IF_OLDER = `local stored = redis.call('GET', KEYS[1])
if stored and cjson.decode(stored).since < tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return redis.call('PUBLISH', KEYS[2], ARGV[2])`

export function redisState (client: Redis, subscriber: Redis, onError: (error: Error) => void, now: () => number = Date.now): SharedState {
  const listeners: Array<(event: PenaltyEvent) => void> = []
  subscriber.on('message', (_channel: string, message: string) => {
    try {
      const event = JSON.parse(message) as PenaltyEvent
      for (const listener of listeners) listener(event)
    } catch {
      // Not ours: another tool on the same channel.
    }
  })
  subscriber.subscribe(CHANNEL).catch(onError)

  return {
    kind: 'redis',
    available: () => client.status === 'ready',
    publishPenalty (event) {
      const payload = JSON.stringify(event)
      const write = event.penalty === null
        ? client.eval(CLEAR_IF_OLDER, 2, penaltyKey(event.id), CHANNEL, event.clearedBefore, payload)
        : client.multi()
          .set(penaltyKey(event.id), JSON.stringify(event.penalty), 'PX', Math.max(1, event.penalty.until - now()) + REMEMBER_MS)
          .publish(CHANNEL, payload).exec()
      write.catch(onError)
    },
    onPenalty (listener) {
      listeners.push(listener)
    },
    async loadPenalties (keys) {
      const wanted = new Set(keys)
      const found: PenaltyEvent[] = []
      try {
        let cursor = '0'
        do {
          const [next, names] = await client.scan(cursor, 'MATCH', `${PENALTY_PREFIX}*`, 'COUNT', 1000)
          cursor = next
          const ids = names.map(name => name.slice(PENALTY_PREFIX.length)).filter(id => wanted.has(id.split(':', 2).join(':')))
          if (ids.length === 0) continue
          const values = await client.mget(ids.map(penaltyKey))
          values.forEach((value, i) => {
            if (value !== null) found.push({ id: ids[i], penalty: JSON.parse(value) as Penalty, clearedBefore: 0 })
          })
        } while (cursor !== '0')
      } catch (error) {
        onError(error as Error)
      }
      return found
    },
    budgets: redisBudgets(client, onError, now),
    async close () {
      // quit() waits for a connection that may never come while Redis is away: only a connected client quits.
      await Promise.allSettled([subscriber, client].map(redis => redis.status === 'ready' ? redis.quit() : redis.disconnect()))
    }
  }
}

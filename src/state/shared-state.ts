import type { Redis } from 'ioredis'

// State that replicas must agree on: upstream key cooldowns and token budgets. In memory by default; in Redis
// when REDIS_URL is set. Redis failing never stops the gateway: reads then see nothing (limits fail open),
// writes are dropped, and each replica falls back on what it knows itself.

export interface CooldownEvent {
  /** `<upstream>:<key fingerprint>`. */
  id: string
  until: number
  reason: string | null
}

export interface TokenWindow {
  used: number
  resetMs: number
}

export interface SharedState {
  readonly kind: 'memory' | 'redis'
  /** False while Redis is unreachable. */
  available (): boolean
  publishCooldown (event: CooldownEvent): void
  onCooldown (listener: (event: CooldownEvent) => void): void
  loadCooldowns (ids: string[]): Promise<CooldownEvent[]>
  addTokens (id: string, amount: number, windowMs: number): Promise<void>
  readTokens (id: string, windowMs: number): Promise<TokenWindow>
  close (): Promise<void>
}

const windowOf = (now: number, windowMs: number) => Math.floor(now / windowMs)
const resetIn = (now: number, windowMs: number) => windowMs - (now % windowMs)

export function memoryState (now: () => number = Date.now): SharedState {
  const windows = new Map<string, { window: number, used: number }>()
  return {
    kind: 'memory',
    available: () => true,
    publishCooldown: () => {},
    onCooldown: () => {},
    loadCooldowns: async () => [],
    async addTokens (id, amount, windowMs) {
      const window = windowOf(now(), windowMs)
      const current = windows.get(id)
      if (current?.window === window) current.used += amount
      else windows.set(id, { window, used: amount })
    },
    async readTokens (id, windowMs) {
      const time = now()
      const current = windows.get(id)
      return { used: current?.window === windowOf(time, windowMs) ? current.used : 0, resetMs: resetIn(time, windowMs) }
    },
    async close () {}
  }
}

const CHANNEL = 'qwen-gateway:cooldowns'
const cooldownKey = (id: string) => `qwen-gateway:cooldown:${id}`
const tokensKey = (id: string, window: number) => `qwen-gateway:tokens:${id}:${window}`

export function redisState (client: Redis, subscriber: Redis, onError: (error: Error) => void, now: () => number = Date.now): SharedState {
  const listeners: Array<(event: CooldownEvent) => void> = []
  subscriber.on('message', (_channel: string, message: string) => {
    try {
      const event = JSON.parse(message) as CooldownEvent
      for (const listener of listeners) listener(event)
    } catch {
      // Not ours: another tool on the same channel.
    }
  })
  subscriber.subscribe(CHANNEL).catch(onError)

  return {
    kind: 'redis',
    available: () => client.status === 'ready',
    publishCooldown (event) {
      const ttl = Math.max(1, event.until - now())
      const payload = JSON.stringify(event)
      const write = event.until > now()
        ? client.multi().set(cooldownKey(event.id), payload, 'PX', ttl).publish(CHANNEL, payload).exec()
        : client.multi().del(cooldownKey(event.id)).publish(CHANNEL, payload).exec()
      write.catch(onError)
    },
    onCooldown (listener) {
      listeners.push(listener)
    },
    async loadCooldowns (ids) {
      if (ids.length === 0) return []
      try {
        const values = await client.mget(ids.map(cooldownKey))
        return values.filter((value): value is string => value !== null).map(value => JSON.parse(value) as CooldownEvent)
      } catch (error) {
        onError(error as Error)
        return []
      }
    },
    async addTokens (id, amount, windowMs) {
      const key = tokensKey(id, windowOf(now(), windowMs))
      await client.multi().incrby(key, Math.round(amount)).pexpire(key, windowMs * 2).exec().catch(onError)
    },
    async readTokens (id, windowMs) {
      const time = now()
      try {
        const used = Number(await client.get(tokensKey(id, windowOf(time, windowMs)))) || 0
        return { used, resetMs: resetIn(time, windowMs) }
      } catch (error) {
        onError(error as Error)
        return { used: 0, resetMs: resetIn(time, windowMs) }
      }
    },
    async close () {
      await Promise.allSettled([subscriber.quit(), client.quit()])
    }
  }
}

import type { Redis } from 'ioredis'

// Client budgets per fixed window: requests and tokens, admitted together in one step, so concurrent requests
// cannot all pass a check that none of them has charged yet. A request reserves its tokens when it is admitted and
// settles them with the upstream's real usage when it ends. In memory, or in Redis (one script per admission, so
// every replica draws on one budget). If Redis fails, admissions fail open: this is the one place that decides.

export interface Limits {
  requestsPerMinute: number
  tokensPerMinute: number
}

export interface Cost {
  requests: number
  tokens: number
}

export interface Admission {
  allowed: boolean
  /** Which limit refused the request. */
  refusedBy: 'requests' | 'tokens' | null
  /** Used in the window, this request included when it was allowed. */
  requests: number
  tokens: number
  /** The window the reservation was made in: the settlement goes there too. */
  window: number
  resetMs: number
  /** True when the store could not be asked and the request was let through. */
  failedOpen: boolean
}

export interface Budgets {
  admit (id: string, cost: Cost, limits: Limits): Promise<Admission>
  /** Corrects a window's tokens by `delta` (real usage minus reservation; negative gives tokens back). */
  settle (id: string, window: number, delta: number): Promise<void>
}

export const WINDOW_MS = 60_000
// Past this many budgets in memory, those of finished windows are dropped (an open gateway keys them by address).
const MEMORY_SWEEP_AT = 10_000

const windowOf = (time: number) => Math.floor(time / WINDOW_MS)
const resetIn = (time: number) => WINDOW_MS - (time % WINDOW_MS)

function decide (used: Cost, cost: Cost, limits: Limits): Admission['refusedBy'] {
  if (limits.requestsPerMinute > 0 && used.requests + cost.requests > limits.requestsPerMinute) return 'requests'
  if (limits.tokensPerMinute > 0 && used.tokens + cost.tokens > limits.tokensPerMinute) return 'tokens'
  return null
}

export function memoryBudgets (now: () => number = Date.now): Budgets {
  const budgets = new Map<string, Cost & { window: number }>()
  return {
    async admit (id, cost, limits) {
      const time = now()
      const window = windowOf(time)
      let used = budgets.get(id)
      if (used?.window !== window) {
        if (budgets.size >= MEMORY_SWEEP_AT) for (const [key, value] of budgets) if (value.window < window) budgets.delete(key)
        used = { window, requests: 0, tokens: 0 }
        budgets.set(id, used)
      }
      const refusedBy = decide(used, cost, limits)
      if (refusedBy === null) {
        used.requests += cost.requests
        used.tokens += cost.tokens
      }
      return { allowed: refusedBy === null, refusedBy, requests: used.requests, tokens: used.tokens, window, resetMs: resetIn(time), failedOpen: false }
    },
    async settle (id, window, delta) {
      const used = budgets.get(id)
      if (used?.window === window) used.tokens = Math.max(0, used.tokens + delta)
    }
  }
}

// KEYS[1]: the budget's hash for one window. ARGV: requests, tokens, requests per minute, tokens per minute, TTL.
// Returns [0 refused by requests | 1 refused by tokens | 2 admitted, requests used, tokens used].
const ADMIT = `local used_r = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
local used_t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local r, t, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if rpm > 0 and used_r + r > rpm then return {0, used_r, used_t} end
if tpm > 0 and used_t + t > tpm then return {1, used_r, used_t} end
redis.call('HINCRBY', KEYS[1], 'r', r)
redis.call('HINCRBY', KEYS[1], 't', t)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {2, used_r + r, used_t + t}`

// A settlement for a window that has already expired has nothing left to correct.
const SETTLE = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], 't', ARGV[1]) end
return 0`

const budgetKey = (id: string, window: number) => `qwen-gateway:budget:${id}:${window}`
const REFUSED_BY = ['requests', 'tokens', null] as const

export function redisBudgets (client: Redis, onError: (error: Error) => void, now: () => number = Date.now): Budgets {
  client.defineCommand('qwenGatewayAdmit', { numberOfKeys: 1, lua: ADMIT })
  client.defineCommand('qwenGatewaySettle', { numberOfKeys: 1, lua: SETTLE })
  const commands = client as unknown as {
    qwenGatewayAdmit (key: string, ...args: number[]): Promise<[number, number, number]>
    qwenGatewaySettle (key: string, delta: number): Promise<number>
  }
  return {
    async admit (id, cost, limits) {
      const time = now()
      const window = windowOf(time)
      try {
        const [verdict, requests, tokens] = await commands.qwenGatewayAdmit(budgetKey(id, window),
          cost.requests, cost.tokens, limits.requestsPerMinute, limits.tokensPerMinute, WINDOW_MS * 2)
        const refusedBy = REFUSED_BY[verdict]
        return { allowed: refusedBy === null, refusedBy, requests, tokens, window, resetMs: resetIn(time), failedOpen: false }
      } catch (error) {
        onError(error as Error)
        return { allowed: true, refusedBy: null, requests: 0, tokens: 0, window, resetMs: resetIn(time), failedOpen: true }
      }
    },
    async settle (id, window, delta) {
      await commands.qwenGatewaySettle(budgetKey(id, window), Math.round(delta)).catch(onError)
    }
  }
}

import { createHash } from 'node:crypto'

// The keys of one upstream and what the gateway knows about each: usable, cooling down after a 429, or set
// aside after a refusal (401/403) or an exhausted quota. Time and randomness come in as options for tests.

export type KeyState = 'healthy' | 'cooling' | 'disabled'

export interface KeyEntry {
  /** What logs, /health and metrics call the key: `key-1`, `key-2` ... never the key itself. */
  readonly label: string
  /** A short digest, the same on every replica, used to share the key's state through Redis. */
  readonly fingerprint: string
  readonly secret: string
  until: number
  reason: string | null
  failures: number
}

export interface KeyRingOptions {
  now?: () => number
  random?: () => number
  /** Cap of the exponential backoff used when a 429 says nothing about when to come back. */
  maxCooldownMs: number
  /** How long a refused key, or one whose quota is spent, is set aside before it is tried again. */
  disableMs: number
  /** Told about every change, so replicas and metrics can follow. */
  onChange?: (entry: KeyEntry) => void
}

const BASE_COOLDOWN_MS = 1000

export function fingerprint (secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12)
}

export class KeyRing {
  readonly entries: KeyEntry[]
  readonly #now: () => number
  readonly #random: () => number
  readonly #options: KeyRingOptions
  #cursor = 0

  constructor (keys: string[], options: KeyRingOptions) {
    this.entries = keys.map((secret, i) => ({ label: `key-${i + 1}`, fingerprint: fingerprint(secret), secret, until: 0, reason: null, failures: 0 }))
    this.#now = options.now ?? Date.now
    this.#random = options.random ?? Math.random
    this.#options = options
  }

  get keyless (): boolean {
    return this.entries.length === 0
  }

  /**
   * The key for a request, or null when every key is cooling down or set aside. With an affinity (a conversation's
   * identity) the choice is a rendezvous hash over the usable keys: the same conversation gets the same key on
   * every replica, so the upstream's prefix cache keeps hitting, and moves only when that key cools down.
   * Without one, keys take turns.
   */
  pick (affinity?: string): KeyEntry | null {
    const now = this.#now()
    if (affinity !== undefined) return this.#rendezvous(affinity, now)
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[(this.#cursor + i) % this.entries.length]
      if (entry.until <= now) {
        this.#cursor = (this.#cursor + i + 1) % this.entries.length
        return entry
      }
    }
    return null
  }

  #rendezvous (affinity: string, now: number): KeyEntry | null {
    let best: KeyEntry | null = null
    let bestScore = -1
    for (const entry of this.entries) {
      if (entry.until > now) continue
      const score = fnv1a(affinity, entry.fingerprint)
      if (score > bestScore) {
        best = entry
        bestScore = score
      }
    }
    return best
  }

  /** Milliseconds until the first key becomes usable again (0 when one is usable now). */
  nextUsableIn (): number {
    const now = this.#now()
    return Math.max(0, Math.min(...this.entries.map(entry => entry.until - now)))
  }

  /** A 429: honour the upstream's Retry-After when it sent one, else back off exponentially with jitter. */
  rateLimited (entry: KeyEntry, retryAfterMs: number | null): void {
    entry.failures++
    const backoff = Math.min(this.#options.maxCooldownMs, BASE_COOLDOWN_MS * 2 ** (entry.failures - 1))
    const wait = retryAfterMs ?? backoff * (0.5 + this.#random() / 2)
    this.#set(entry, this.#now() + Math.min(wait, this.#options.maxCooldownMs), 'rate_limited')
  }

  disabled (entry: KeyEntry, reason: 'refused' | 'quota'): void {
    entry.failures++
    this.#set(entry, this.#now() + this.#options.disableMs, reason)
  }

  succeeded (entry: KeyEntry): void {
    if (entry.failures === 0 && entry.reason === null) return
    entry.failures = 0
    this.#set(entry, 0, null)
  }

  /** A change learnt from another replica. */
  apply (fingerprintOf: string, until: number, reason: string | null): void {
    const entry = this.entries.find(candidate => candidate.fingerprint === fingerprintOf)
    if (!entry || (entry.until === until && entry.reason === reason)) return
    entry.until = until
    entry.reason = reason
    this.#options.onChange?.(entry)
  }

  state (entry: KeyEntry): KeyState {
    if (entry.until <= this.#now()) return 'healthy'
    return entry.reason === 'rate_limited' ? 'cooling' : 'disabled'
  }

  #set (entry: KeyEntry, until: number, reason: string | null): void {
    entry.until = until
    entry.reason = reason
    this.#options.onChange?.(entry)
  }
}

/** 32-bit FNV-1a of two strings joined by a NUL: cheap, stable across processes, spread well enough for a few keys. */
function fnv1a (a: string, b: string): number {
  return fnvAdd(Math.imul(fnvAdd(0x811c9dc5, a), 0x01000193), b) >>> 0
}

function fnvAdd (hash: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash
}

/** Retry-After as seconds or an HTTP date, in milliseconds; null when absent or unreadable. */
export function parseRetryAfter (value: string | string[] | undefined, now = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value
  if (!text) return null
  const seconds = Number(text)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) ? null : Math.max(0, date - now)
}

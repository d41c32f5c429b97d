import { createHash } from 'node:crypto'

// The keys of one upstream and what the gateway knows about each. A penalty has a scope: the whole key (a key the
// upstream refuses, an account out of quota or in arrears) or one model on that key (access denied for that model,
// its rate limit or its own quota). A refusal for one model never keeps a key from serving another. Time and
// randomness come in as options for tests.

export type PenaltyReason = 'rate_limited' | 'refused' | 'quota' | 'access_denied'

/** The scope of a penalty on the whole key; any other scope is a model id. */
export const KEY_SCOPE = '*'

/** What the upstream said when it refused a key: repeated to clients while the refusal stands. */
export interface Refusal {
  status: number
  message: string
  type: string
  code: string | null
}

export interface Penalty {
  reason: PenaltyReason
  /** When it was recorded. A success clears it only if that request started before this. */
  since: number
  until: number
  /** Consecutive failures in this scope: the exponent of the backoff. */
  level: number
  refusal: Refusal | null
}

export interface KeyEntry {
  /** What logs, /health and metrics call the key: `key-1`, `key-2` ... never the key itself. */
  readonly label: string
  /** A short digest, the same on every replica, used to share the key's state through Redis. */
  readonly fingerprint: string
  readonly secret: string
  /** By scope. Expired penalties stay until a success clears them, so the next failure backs off further. */
  readonly penalties: Map<string, Penalty>
  /** Scopes whose probe (the one request let through after a refusal ran out) is out, and until when. */
  readonly probes: Map<string, number>
}

/** One request's use of a key: what a success or a failure afterwards applies to. */
export interface KeyLease {
  entry: KeyEntry
  model: string
  startedAt: number
  /** Scopes this request probes: it alone may use the key there until it settles. */
  probing: string[]
}

export interface PenaltyInput {
  scope: 'key' | 'model'
  reason: PenaltyReason
  /** Rate limits: the upstream's Retry-After, when it sent one. */
  retryAfterMs?: number | null
  refusal?: Refusal | null
}

/** Why no key can serve a model right now. */
export type Blocked =
  | { kind: 'cooling', waitMs: number }
  | { kind: 'refused', refusal: Refusal | null, reason: PenaltyReason }

export interface KeyRingOptions {
  now?: () => number
  random?: () => number
  /** Cap of the exponential backoff used when a 429 says nothing about when to come back. */
  maxCooldownMs: number
  /** How long a refused key (or a key out of quota) is set aside before one request probes it again. */
  disableMs: number
  /** Told about every penalty set or cleared here (not about those learnt from other replicas). */
  onChange?: (entry: KeyEntry, scope: string, penalty: Penalty | null, clearedBefore: number) => void
}

const BASE_COOLDOWN_MS = 1000
// A probe that neither succeeds nor fails (its client left, the network broke) gives the key back after this.
const PROBE_LEASE_MS = 60_000
// Model scopes remembered per key; a model's penalties arrive only from real upstream refusals, yet stay bounded.
const MAX_SCOPES = 256
const NOTHING_TO_PROBE: string[] = []

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
    this.entries = keys.map((secret, i) => ({
      label: `key-${i + 1}`, fingerprint: fingerprint(secret), secret, penalties: new Map(), probes: new Map()
    }))
    this.#now = options.now ?? Date.now
    this.#random = options.random ?? Math.random
    this.#options = options
  }

  get keyless (): boolean {
    return this.entries.length === 0
  }

  /**
   * A key for a request to `model`, or null when none may serve it now. With an affinity (a conversation's
   * identity) the choice is a rendezvous hash over the usable keys: the same conversation gets the same key on
   * every replica, so the upstream's prefix cache keeps hitting, and moves only when that key is penalised.
   * Without one, keys take turns.
   */
  pick (model: string, affinity?: string): KeyLease | null {
    const now = this.#now()
    let chosen: KeyEntry | null = null
    if (affinity !== undefined) {
      let bestScore = -1
      for (const entry of this.entries) {
        if (!this.#usable(entry, model, now)) continue
        const score = fnv1a(affinity, entry.fingerprint)
        if (score > bestScore) {
          chosen = entry
          bestScore = score
        }
      }
    } else {
      for (let i = 0; i < this.entries.length && chosen === null; i++) {
        const index = (this.#cursor + i) % this.entries.length
        if (this.#usable(this.entries[index], model, now)) {
          chosen = this.entries[index]
          this.#cursor = (index + 1) % this.entries.length
        }
      }
    }
    if (chosen === null) return null
    // Nearly always nothing to probe: no array is made for it then.
    const probing = chosen.penalties.size === 0 ? NOTHING_TO_PROBE : this.#scopes(model).filter(scope => needsProbe(chosen.penalties.get(scope), now))
    for (const scope of probing) chosen.probes.set(scope, now + PROBE_LEASE_MS)
    return { entry: chosen, model, startedAt: now, probing }
  }

  /** The request got an answer: penalties recorded before it started no longer stand, and the backoff starts over. */
  succeeded (lease: KeyLease): void {
    this.release(lease)
    for (const scope of this.#scopes(lease.model)) {
      const penalty = lease.entry.penalties.get(scope)
      if (penalty === undefined || penalty.since >= lease.startedAt) continue
      lease.entry.penalties.delete(scope)
      this.#options.onChange?.(lease.entry, scope, null, lease.startedAt)
    }
  }

  /**
   * The upstream refused the request or limited it. A penalty already recorded while this request was on its way
   * belongs to the same episode (concurrent requests hitting one limit): it does not grow the backoff again.
   */
  failed (lease: KeyLease, input: PenaltyInput): void {
    this.release(lease)
    const scope = input.scope === 'key' ? KEY_SCOPE : lease.model
    if (scope === '') return // a request for no model in particular (the model list) cannot set one aside
    const now = this.#now()
    const current = lease.entry.penalties.get(scope)
    if (current !== undefined && current.since >= lease.startedAt && current.until > now) return
    const level = (current?.level ?? 0) + 1
    const wait = input.reason === 'rate_limited' ? this.#cooldown(level, input.retryAfterMs ?? null) : this.#options.disableMs
    const penalty = { reason: input.reason, since: now, until: now + wait, level, refusal: input.refusal ?? null }
    this.#store(lease.entry, scope, penalty)
    this.#options.onChange?.(lease.entry, scope, penalty, 0)
  }

  /** The request ended without telling anything about the key (a 5xx, a network error, the client left). */
  release (lease: KeyLease): void {
    for (const scope of lease.probing) lease.entry.probes.delete(scope)
    lease.probing = NOTHING_TO_PROBE
  }

  /** Why no key may serve `model` now; null when one may. */
  blocked (model: string): Blocked | null {
    if (this.keyless) return null
    const now = this.#now()
    let waitMs = Infinity
    let refused: Penalty | null = null
    for (const entry of this.entries) {
      if (this.#usable(entry, model, now)) return null
      for (const scope of this.#scopes(model)) {
        const penalty = entry.penalties.get(scope)
        if (penalty === undefined) continue
        if (penalty.reason === 'rate_limited' && penalty.until > now) waitMs = Math.min(waitMs, penalty.until - now)
        else if (penalty.reason !== 'rate_limited') refused ??= penalty
      }
    }
    // Some key will be usable again soon: that is rate limiting, worth a retry. Only refusals everywhere are final.
    if (waitMs !== Infinity || refused === null) return { kind: 'cooling', waitMs: waitMs === Infinity ? 0 : waitMs }
    return { kind: 'refused', refusal: refused.refusal, reason: refused.reason }
  }

  /** The key's own state, whatever its models' penalties. */
  state (entry: KeyEntry): 'healthy' | 'cooling' | 'disabled' {
    const penalty = this.active(entry, KEY_SCOPE)
    if (penalty === null) return 'healthy'
    return penalty.reason === 'rate_limited' ? 'cooling' : 'disabled'
  }

  /** The penalty in force in a scope, or null. */
  active (entry: KeyEntry, scope: string): Penalty | null {
    const penalty = entry.penalties.get(scope)
    return penalty !== undefined && penalty.until > this.#now() ? penalty : null
  }

  /** A change learnt from another replica; the newer record wins, a clear removes only what it saw. */
  apply (fingerprintOf: string, scope: string, penalty: Penalty | null, clearedBefore: number): void {
    const entry = this.entries.find(candidate => candidate.fingerprint === fingerprintOf)
    if (entry === undefined) return
    const current = entry.penalties.get(scope)
    if (penalty === null) {
      if (current !== undefined && current.since < clearedBefore) entry.penalties.delete(scope)
    } else if (current === undefined || penalty.since >= current.since) {
      this.#store(entry, scope, penalty)
    }
  }

  #usable (entry: KeyEntry, model: string, now: number): boolean {
    if (entry.penalties.size === 0) return true
    return this.#open(entry, KEY_SCOPE, now) && (model === '' || this.#open(entry, model, now))
  }

  /** Nothing in this scope keeps the key from a request: no penalty in force, no probe of someone else's out. */
  #open (entry: KeyEntry, scope: string, now: number): boolean {
    const penalty = entry.penalties.get(scope)
    if (penalty === undefined) return true
    if (penalty.until > now) return false
    return !(needsProbe(penalty, now) && (entry.probes.get(scope) ?? 0) > now)
  }

  #scopes (model: string): string[] {
    return model === '' ? [KEY_SCOPE] : [KEY_SCOPE, model]
  }

  /** Retry-After when the upstream sent one, else 1 s, 2 s, 4 s ... with jitter; never above the configured cap. */
  #cooldown (level: number, retryAfterMs: number | null): number {
    const backoff = Math.min(this.#options.maxCooldownMs, BASE_COOLDOWN_MS * 2 ** (level - 1))
    return Math.min(retryAfterMs ?? backoff * (0.5 + this.#random() / 2), this.#options.maxCooldownMs)
  }

  #store (entry: KeyEntry, scope: string, penalty: Penalty): void {
    entry.penalties.delete(scope)
    entry.penalties.set(scope, penalty)
    if (entry.penalties.size <= MAX_SCOPES) return
    // Forget the oldest scope that is not in force; failing that, the oldest of all.
    const now = this.#now()
    let victim: string | undefined
    for (const [candidate, held] of entry.penalties) {
      if (held.until <= now) {
        victim = candidate
        break
      }
      victim ??= candidate
    }
    if (victim !== undefined) entry.penalties.delete(victim)
  }
}

/** A refusal that ran out is tried again by one request, not by every request at once. */
function needsProbe (penalty: Penalty | undefined, now: number): boolean {
  return penalty !== undefined && penalty.reason !== 'rate_limited' && penalty.until <= now
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

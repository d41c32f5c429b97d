import { createHash } from 'node:crypto'

// A conversation's identity, so its requests can stay on one upstream key (prefix caches) and be counted.

const MAX_ID_LENGTH = 200

interface Message {
  role?: unknown
  content?: unknown
}

/**
 * `x-session-id` when the client sends one, else the `user` field, else a digest of the system prompt and the
 * first user message: those stay the same for every turn of an agent's conversation.
 */
export function sessionId (header: unknown, body: { user?: unknown, messages?: Message[] }): string {
  if (typeof header === 'string' && header !== '') return `h:${header.slice(0, MAX_ID_LENGTH)}`
  if (typeof body.user === 'string' && body.user !== '') return `u:${body.user.slice(0, MAX_ID_LENGTH)}`
  const messages = body.messages ?? []
  const system = messages.find(message => message.role === 'system' || message.role === 'developer')
  const firstUser = messages.find(message => message.role === 'user')
  const digest = createHash('sha256')
  digest.update(JSON.stringify(system?.content ?? null))
  digest.update('\u0000')
  digest.update(JSON.stringify(firstUser?.content ?? null))
  return `c:${digest.digest('hex').slice(0, 24)}`
}

/** Sessions seen within a sliding window; bounded, oldest forgotten first. */
export class SessionTracker {
  readonly #seen = new Map<string, number>()
  readonly #windowMs: number
  readonly #max: number
  readonly #now: () => number

  constructor (windowMs: number, max = 100_000, now: () => number = Date.now) {
    this.#windowMs = windowMs
    this.#max = max
    this.#now = now
  }

  touch (id: string): void {
    this.#seen.delete(id) // re-inserted last: the map stays ordered by last use
    this.#seen.set(id, this.#now())
    if (this.#seen.size > this.#max) this.#seen.delete(this.#seen.keys().next().value!)
  }

  active (): number {
    const oldest = this.#now() - this.#windowMs
    for (const [id, at] of this.#seen) {
      if (at >= oldest) break
      this.#seen.delete(id)
    }
    return this.#seen.size
  }
}

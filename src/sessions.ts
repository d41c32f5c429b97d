import { createHash } from 'node:crypto'

// A conversation's identity, so its requests can stay on one upstream key (prefix caches) and be counted.

const MAX_ID_LENGTH = 200
// How much of a long text stands for all of it: its length, then this many characters from each end. An agent's
// system prompt runs to tens of kilobytes and a first message can carry whole files or images; serialising and
// hashing them whole on every turn was a tenth of an agent-size request's CPU.
const SAMPLE_CHARS = 2048
const SAMPLE_ITEMS = 8

interface Message {
  role?: unknown
  content?: unknown
}

/** A bounded stand-in for a text: the text itself when short, else its length, head and tail. */
function sampled (text: string): string {
  if (text.length <= 2 * SAMPLE_CHARS) return text
  return `${text.length}\u0001${text.slice(0, SAMPLE_CHARS)}\u0001${text.slice(-SAMPLE_CHARS)}`
}

/**
 * A message's content as JSON with long texts and long lists sampled: exactly `JSON.stringify` of it when nothing
 * is long, so the conversations of short prompts keep the sessions (and upstream keys) they had when the whole
 * content was serialised.
 */
function fingerprint (value: unknown, depth = 0): string {
  if (typeof value === 'string') return JSON.stringify(sampled(value))
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null'
  if (depth > 4) return '"…"' // content parts nest three deep; deeper is not worth reading
  if (Array.isArray(value)) {
    const items = value.length <= 2 * SAMPLE_ITEMS ? value : [value.length, ...value.slice(0, SAMPLE_ITEMS), ...value.slice(-SAMPLE_ITEMS)]
    return `[${items.map(item => fingerprint(item, depth + 1)).join(',')}]`
  }
  const fields: string[] = []
  for (const [key, item] of Object.entries(value)) if (item !== undefined) fields.push(`${JSON.stringify(key)}:${fingerprint(item, depth + 1)}`)
  return `{${fields.join(',')}}`
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
  digest.update(fingerprint(system?.content ?? null))
  digest.update('\u0000')
  digest.update(fingerprint(firstUser?.content ?? null))
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

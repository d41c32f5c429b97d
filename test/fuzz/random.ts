// A small seeded PRNG (sfc32, seeded through splitmix32) so that a fuzz run is reproducible from its seed and a
// case from its seed and index: every case draws from its own generator, whatever ran before it.

function splitmix32 (state: number): () => number {
  return () => {
    state = (state + 0x9e3779b9) | 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
}

/** A 32-bit hash of a string (FNV-1a), to turn a seed such as "1a2b" or "nightly" into a number. */
export function hashSeed (text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number, stream = 0) {
    const init = splitmix32((seed ^ Math.imul(stream + 1, 0x27d4eb2d)) | 0)
    this.a = init()
    this.b = init()
    this.c = init()
    this.d = init()
    for (let i = 0; i < 12; i++) this.next()
  }

  /** A float in [0, 1). */
  next (): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return (t >>> 0) / 4294967296
  }

  /** An integer from min to max, both included. */
  int (min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  chance (p: number): boolean {
    return this.next() < p
  }

  pick<T> (items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]
  }

  /** Picks by weight: [[weight, value], ...]. */
  weighted<T> (entries: ReadonlyArray<readonly [number, T]>): T {
    const total = entries.reduce((sum, [weight]) => sum + weight, 0)
    let r = this.next() * total
    for (const [weight, value] of entries) {
      r -= weight
      if (r < 0) return value
    }
    return entries[entries.length - 1][1]
  }

  bytes (length: number): Buffer {
    const out = Buffer.alloc(length)
    for (let i = 0; i < length; i++) out[i] = Math.floor(this.next() * 256)
    return out
  }

  /** A string of `length` characters drawn from `alphabet`. */
  string (length: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'): string {
    let out = ''
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(this.next() * alphabet.length)]
    return out
  }

  /** Text with a mix of ASCII, accents, CJK, emoji (surrogate pairs), controls and JSON-special characters. */
  text (length: number): string {
    const pieces = ['a', 'b', ' ', 'Z', '0', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', 'é', 'ß', '中', '文', '😀', '🧪', '\u2028', '\u2029', '\ufeff', '\u202e', '<', '>', '&', '%', '{', '}', '[', ']']
    let out = ''
    while (out.length < length) out += this.pick(pieces)
    return out
  }
}

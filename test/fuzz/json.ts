// JSON building blocks for the fuzzer: literal JSON text where JSON.stringify cannot produce it (1e400, -0,
// duplicate keys, __proto__ as a key), and random JSON values.

import type { Rng } from './random.ts'

/** Written into the output exactly as given, without quoting. */
export class RawJson {
  readonly text: string
  constructor (text: string) {
    this.text = text
  }
}

export const raw = (text: string) => new RawJson(text)

/** JSON.stringify, except that RawJson values are written as their literal text. */
export function toJson (value: unknown): string {
  const raws: string[] = []
  const text = JSON.stringify(value, (_key, item: unknown) => item instanceof RawJson ? `\u0000raw${raws.push(item.text) - 1}\u0000` : item)
  return text.replace(/"\\u0000raw(\d+)\\u0000"/g, (_match, index: string) => raws[Number(index)])
}

export const jsonBuffer = (value: unknown) => Buffer.from(toJson(value))

/** The JSON text of an object with `fields` (already JSON text, "key":value) added after its own. */
export function withRawFields (value: object, fields: string[]): string {
  const text = toJson(value)
  if (fields.length === 0) return text
  return text.length === 2 ? `{${fields.join(',')}}` : `${text.slice(0, -1)},${fields.join(',')}}`
}

/** Nested arrays or objects, `depth` levels deep, as text (JSON.stringify itself cannot write them that deep). */
export function deepJson (depth: number, kind: 'array' | 'object' | 'mixed', leaf = '1', rng?: Rng): string {
  if (kind === 'array') return '['.repeat(depth) + leaf + ']'.repeat(depth)
  if (kind === 'object') return '{"a":'.repeat(depth) + leaf + '}'.repeat(depth)
  const open: string[] = []
  const close: string[] = []
  for (let i = 0; i < depth; i++) {
    if (rng?.chance(0.5)) {
      open.push('[')
      close.push(']')
    } else {
      open.push('{"k":')
      close.push('}')
    }
  }
  return open.join('') + leaf + close.reverse().join('')
}

const NUMBERS = [0, -0, 1, -1, 0.5, 1e-7, 2 ** 31, -(2 ** 31), 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1.7976931348623157e308, 5e-324]
const RAW_NUMBERS = ['1e400', '-1e400', '1E-400', '-0.0', '123456789012345678901234567890', '0.' + '1'.repeat(400)]
const KEY_CHARS = 'abcdefghijklmnopqrstuvwxyz_0123456789-$.é中😀 '

/** A key that is never one the gateway or the simulator reads: unknown fields go upstream untouched. */
export function unknownKey (rng: Rng): string {
  return 'x_' + rng.string(rng.int(1, 12), KEY_CHARS)
}

/** A random JSON value, at most `depth` levels deep, with awkward numbers, strings and keys. */
export function randomJson (rng: Rng, depth: number): unknown {
  const kind = depth <= 0 ? rng.int(0, 4) : rng.int(0, 7)
  switch (kind) {
    case 0: return null
    case 1: return rng.chance(0.5)
    case 2: return rng.chance(0.7) ? rng.pick(NUMBERS) : raw(rng.pick(RAW_NUMBERS))
    case 3: return rng.int(-1_000_000, 1_000_000) / rng.pick([1, 7, 1000])
    case 4: return rng.text(rng.int(0, 40))
    case 5:
    case 6: {
      const items: unknown[] = []
      const count = rng.int(0, 6)
      for (let i = 0; i < count; i++) items.push(randomJson(rng, depth - 1))
      return items
    }
    default: {
      const object: Record<string, unknown> = {}
      const count = rng.int(0, 6)
      for (let i = 0; i < count; i++) object[unknownKey(rng)] = randomJson(rng, depth - 1)
      return object
    }
  }
}

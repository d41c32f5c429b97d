import type { Exchange } from './exchange.ts'
import type { Plan } from './plan.ts'
import type { HugeFrame, MalformedKind } from './types.ts'

// Upstreams that are broken or hostile (issue 9, "An upstream frame can hurt the process"): JSON spaced the way
// Python writes it, events of many megabytes, events that cannot be parsed.

export type Json = (value: unknown) => string

/** Python's json.dumps with its default separators (`", "`, `": "`): what a Python upstream writes. No newlines. */
export function spacedJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(item => item === undefined ? 'null' : spacedJson(item)).join(', ')}]`
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value).filter(([, item]) => item !== undefined)
    return `{${members.map(([key, item]) => `${JSON.stringify(key)}: ${spacedJson(item)}`).join(', ')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

const base = (plan: Plan) => ({ id: plan.id, object: 'chat.completion.chunk', created: plan.created, model: plan.model })

const contentChunk = (plan: Plan, content: string) =>
  ({ ...base(plan), usage: null, choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] })

const FOLLOW_UP = 16 * 1024
const FOLLOW_UPS = 6

/**
 * What goes before a broken event to put it behind backpressure. First one content event of `bytes`: written at
 * once to a client that is not reading, it fills the buffers between the gateway and that client (for loopback,
 * make it several MiB), so the gateway stops writing right after it. Then six events of 16 KiB: the gateway's relay
 * buffers them until its own buffer is full (64 KiB on Node 22+) and pauses the upstream body, which then holds the
 * last of them and the broken event until the client reads again.
 */
export function paddingChunks (plan: Plan, bytes: number): Array<Record<string, unknown>> {
  if (bytes <= 0) return []
  const sizes = [bytes, ...Array.from({ length: FOLLOW_UPS }, () => FOLLOW_UP)]
  return sizes.map(size => contentChunk(plan, 'padding '.repeat(Math.ceil(size / 8))))
}

const cut = (text: string, before: string) => text.slice(0, text.indexOf(before))

/** The `data:` payload of an event the gateway cannot read (see MalformedKind). */
export function malformedData (plan: Plan, kind: MalformedKind, json: Json): string {
  switch (kind) {
    case 'usage':
      return cut(json({ ...base(plan), choices: [], usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } }), '"completion_tokens"')
    case 'tool_calls': {
      const call = { index: 0, id: 'call_0123456789abcdef012345', type: 'function', function: { name: 'read_file', arguments: '{"path": "a.ts"}' } }
      return cut(json({ ...base(plan), usage: null, choices: [{ index: 0, delta: { content: null, tool_calls: [call] }, logprobs: null, finish_reason: null }] }), '"arguments"')
    }
    case 'choices_string':
      return json({ ...base(plan), choices: 'x', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })
    case 'tool_calls_object':
      return json({ ...base(plan), usage: null, choices: [{ index: 0, delta: { content: '', tool_calls: {} }, logprobs: null, finish_reason: null }] })
  }
}

const FILL = Buffer.alloc(64 * 1024, 'x')
const MARK = 'HUGE_FRAME_FILL'

/**
 * Writes one event of `huge.bytes` bytes: a content chunk whose text is that long, in writes of 64 KiB. Returns
 * false when the event was left unfinished (no closing JSON, no blank line), as `complete: false` asks.
 */
export async function writeHugeFrame (ex: Exchange, plan: Plan, huge: HugeFrame, json: Json, nl: string): Promise<boolean> {
  const [head, tail] = json(contentChunk(plan, MARK)).split(MARK)
  const prefix = `data: ${head}`
  const suffix = huge.complete === true ? `${tail}${nl}${nl}` : ''
  await ex.write(prefix)
  let fill = Math.max(0, huge.bytes - Buffer.byteLength(prefix) - Buffer.byteLength(suffix))
  while (fill > 0) {
    const piece = Math.min(fill, FILL.length)
    await ex.write(piece === FILL.length ? FILL : FILL.subarray(0, piece))
    fill -= piece
  }
  if (suffix === '') return false
  await ex.write(suffix)
  return true
}

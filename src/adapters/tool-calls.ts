import { randomBytes } from 'node:crypto'

// Tool-call deltas as OpenAI clients rely on them (wire contract §1.5, §2.2): the first delta of each index carries
// id, type, name and `arguments: ""`; later ones only the index and an argument fragment. DashScope sends the name
// and the first fragment together, repeats `"id": ""`, and ends with a fragment `arguments: null`; other Qwen
// servers send `"name": ""` or no id at all. Fragments are concatenated as they are, never parsed or re-encoded.

export interface ToolCallDelta {
  index?: number
  id?: string | null
  type?: string | null
  function?: { name?: string | null, arguments?: string | null }
}

export interface ChunkChoice {
  index: number
  delta?: { role?: string, content?: string | null, tool_calls?: ToolCallDelta[] | null, [key: string]: unknown }
  finish_reason?: string | null
  logprobs?: unknown
  [key: string]: unknown
}

interface CallState {
  started: boolean
  id: string | null
  name: string | null
  /** Arguments that arrived before the name did. */
  pending: string
}

const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null)

export const newToolCallId = () => `call_${randomBytes(12).toString('hex')}`

/** Per stream: turns each choice's tool-call deltas into the canonical sequence, remembering what each index sent. */
export class ToolCallNormaliser {
  readonly #calls = new Map<string, CallState>()
  readonly #choicesWithCalls = new Set<number>()

  /** Whether any choice has emitted a tool call. */
  get hasAny (): boolean {
    return this.#choicesWithCalls.size > 0
  }

  /** Whether this choice has emitted a tool call (its `finish_reason` must then say so). */
  hasCalls (choice: number): boolean {
    return this.#choicesWithCalls.has(choice)
  }

  /**
   * The canonical deltas for one choice's `tool_calls`, in groups that each hold an index at most once: a new
   * call's opening delta and its first fragment go out in separate chunks, as OpenAI sends them.
   */
  normalise (choice: number, deltas: ToolCallDelta[]): ToolCallDelta[][] {
    const groups: ToolCallDelta[][] = []
    const place = (delta: ToolCallDelta) => {
      const group = groups.find(candidate => !candidate.some(entry => entry.index === delta.index))
      if (group) group.push(delta)
      else groups.push([delta])
    }
    deltas.forEach((delta, position) => {
      const index = Number.isSafeInteger(delta.index) ? delta.index! : position
      const key = `${choice}:${index}`
      let state = this.#calls.get(key)
      if (!state) {
        state = { started: false, id: null, name: null, pending: '' }
        this.#calls.set(key, state)
      }
      const fragment = typeof delta.function?.arguments === 'string' ? delta.function.arguments : ''
      if (state.started) {
        if (fragment) place({ index, function: { arguments: fragment } })
        return
      }
      state.id ??= text(delta.id)
      state.name ??= text(delta.function?.name)
      state.pending += fragment
      // An index is announced only once its name is known; fragments that came earlier wait for it.
      if (!state.name) return
      state.started = true
      this.#choicesWithCalls.add(choice)
      place({ index, id: state.id ?? newToolCallId(), type: 'function', function: { name: state.name, arguments: '' } })
      if (state.pending) place({ index, function: { arguments: state.pending } })
      state.pending = ''
    })
    return groups
  }
}

/** A complete (non-streamed) tool call made whole: an id, the type, and arguments as a string. */
export function normaliseToolCall (call: ToolCallDelta & { function?: { name?: string | null, arguments?: unknown } }) {
  const args = call.function?.arguments
  return {
    ...call,
    id: text(call.id) ?? newToolCallId(),
    type: 'function',
    function: {
      ...call.function,
      name: call.function?.name ?? '',
      arguments: typeof args === 'string' ? args : args == null ? '' : JSON.stringify(args)
    }
  }
}

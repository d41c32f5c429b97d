import type { Chunk } from '../chunk-transforms.ts'
import { newToolCallId, type ToolCallDelta } from '../tool-calls.ts'
import type { GatewayError } from '../../errors.ts'
import { COMMENT_HEARTBEAT, namedEvent, type EventWriter } from '../event-writer.ts'
import { responseError } from './failure.ts'
import { outputItemId } from './ids.ts'
import { baseResponse, callItem, customInput, finishState, messageItem, outputText, reasoningItem, type ResponseSetup } from './response.ts'
import type { Item, ResponseObject, ResponseUsage } from './types.ts'
import { responseUsage } from './usage.ts'

// The Responses stream (wire-apis §1.5): response.created → response.in_progress → per item output_item.added,
// its content events, output_item.done → exactly one of response.completed / incomplete / failed carrying the whole
// output and the usage. Every event has `event:` and `data:`, and a strictly increasing sequence_number from 0.

export interface ResponsesWriterOptions {
  /** Told the final Response once its terminal event is written (to store it). */
  onFinal?: (response: ResponseObject) => void
  /**
   * Silence after which a heartbeat is a `keepalive` event instead of a comment: comments keep proxies open but do
   * not reset Codex's 300 s idle timer (wire-apis §0).
   */
  keepaliveAfterMs?: number
  now?: () => number
}

interface TextItem {
  kind: 'reasoning' | 'message'
  index: number
  id: string
  text: string
}

interface CallState {
  index: number
  id: string
  callId: string
  chatName: string
  custom: boolean
  args: string
  done: boolean
}

const ZERO_USAGE: ResponseUsage = {
  input_tokens: 0,
  input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
  output_tokens: 0,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 0
}

export class ResponsesEventWriter implements EventWriter {
  readonly #setup: ResponseSetup
  readonly #onFinal: (response: ResponseObject) => void
  readonly #keepaliveAfterMs: number
  readonly #now: () => number
  #sequence = 0
  #started = false
  #lastEventAt: number
  readonly #output: Item[] = []
  #open: TextItem | null = null
  /** Tool calls by their chat index; they stay open until the answer ends or text or reasoning follows them. */
  readonly #calls = new Map<number, CallState>()
  /** Whitespace that would open a message: held until real text follows (Qwen writes "\n\n" before tool calls). */
  #heldWhitespace = ''
  #finishReason: string | null = null
  #usage: ResponseUsage | null = null

  constructor (setup: ResponseSetup, options: ResponsesWriterOptions = {}) {
    this.#setup = setup
    this.#onFinal = options.onFinal ?? (() => {})
    this.#keepaliveAfterMs = options.keepaliveAfterMs ?? 60_000
    this.#now = options.now ?? Date.now
    this.#lastEventAt = this.#now()
  }

  chunk (chunk: Chunk): string {
    let out = this.#start()
    if (chunk.usage) this.#usage = responseUsage(chunk.usage)
    for (const choice of chunk.choices ?? []) {
      // One answer per response: choices past the first (n > 1, which this API has no word for) are not shown.
      if (choice.index !== 0 && choice.index !== undefined) continue
      const delta = choice.delta ?? {}
      if (typeof delta.reasoning_content === 'string' && delta.reasoning_content !== '') out += this.#text('reasoning', delta.reasoning_content)
      if (typeof delta.content === 'string' && delta.content !== '') out += this.#text('message', delta.content)
      for (const call of delta.tool_calls ?? []) out += this.#toolCall(call)
      if (choice.finish_reason) this.#finishReason = choice.finish_reason
    }
    return out
  }

  end (): string {
    const state = finishState(this.#finishReason)
    const itemStatus = state.status === 'completed' ? 'completed' : 'incomplete'
    let out = this.#start()
    // An answer of whitespace alone is still the answer; before tool calls it was no message.
    if (this.#heldWhitespace !== '' && this.#calls.size === 0) out += this.#closeText('completed') + this.#openText('message') + this.#text('message', this.#heldWhitespace)
    out += this.#closeText(itemStatus) + this.#closeCalls(itemStatus)
    const response: ResponseObject = { ...baseResponse(this.#setup), ...state, output: this.#output, usage: this.#usage ?? ZERO_USAGE }
    out += this.#event(state.status === 'completed' ? 'response.completed' : 'response.incomplete', { response })
    this.#onFinal(response)
    return out
  }

  /**
   * The answer broke off: `response.failed` with what had been produced. Items still open get no
   * `output_item.done`: Codex and the AI SDK act on done tool calls, and a half-written call must not run.
   */
  fail (error: GatewayError): string {
    const out = this.#start()
    if (this.#open) this.#output[this.#open.index] = this.#finished(this.#open, 'incomplete')
    for (const call of this.#calls.values()) if (!call.done) this.#output[call.index] = this.#callItem(call, 'incomplete')
    const response: ResponseObject = { ...baseResponse(this.#setup), status: 'failed', error: responseError(error), output: this.#output, usage: this.#usage ?? ZERO_USAGE }
    this.#onFinal(response)
    return out + this.#event('response.failed', { response })
  }

  heartbeat (): string {
    if (!this.#started) return this.#start()
    if (this.#now() - this.#lastEventAt >= this.#keepaliveAfterMs) return this.#event('keepalive', {})
    return COMMENT_HEARTBEAT
  }

  #event (type: string, fields: Record<string, unknown>): string {
    this.#lastEventAt = this.#now()
    return namedEvent(type, { type, sequence_number: this.#sequence++, ...fields })
  }

  #start (): string {
    if (this.#started) return ''
    this.#started = true
    return this.#event('response.created', { response: baseResponse(this.#setup) }) +
      this.#event('response.in_progress', { response: baseResponse(this.#setup) })
  }

  /** Reasoning or message text: continues the open item of that kind, else closes what is open and starts one. */
  #text (kind: TextItem['kind'], text: string): string {
    let delta = text
    let out = ''
    if (this.#open?.kind !== kind) {
      if (kind === 'message') {
        if (delta.trim() === '') {
          this.#heldWhitespace += delta
          return ''
        }
        delta = this.#heldWhitespace + delta
      }
      this.#heldWhitespace = ''
      out += this.#closeText('completed') + this.#closeCalls('completed') + this.#openText(kind)
    }
    const item = this.#open!
    item.text += delta
    const at = { item_id: item.id, output_index: item.index }
    if (kind === 'message') return out + this.#event('response.output_text.delta', { ...at, content_index: 0, delta, logprobs: [] })
    if (this.#setup.summarize) return out + this.#event('response.reasoning_summary_text.delta', { ...at, summary_index: 0, delta })
    return out + this.#event('response.reasoning_text.delta', { ...at, content_index: 0, delta })
  }

  #openText (kind: TextItem['kind']): string {
    const index = this.#output.length
    const id = outputItemId(kind, this.#setup.core, index)
    this.#open = { kind, index, id, text: '' }
    const at = { item_id: id, output_index: index }
    if (kind === 'message') {
      const item = { type: 'message', id, role: 'assistant', status: 'in_progress', content: [] }
      this.#output.push(item)
      return this.#event('response.output_item.added', { output_index: index, item }) +
        this.#event('response.content_part.added', { ...at, content_index: 0, part: outputText('') })
    }
    const item: Item = this.#setup.summarize ? { type: 'reasoning', id, summary: [] } : { type: 'reasoning', id, summary: [], content: [] }
    this.#output.push(item)
    const added = this.#event('response.output_item.added', { output_index: index, item })
    if (this.#setup.summarize) return added + this.#event('response.reasoning_summary_part.added', { ...at, summary_index: 0, part: { type: 'summary_text', text: '' } })
    return added + this.#event('response.content_part.added', { ...at, content_index: 0, part: { type: 'reasoning_text', text: '' } })
  }

  #finished (open: TextItem, status: string): Item {
    return open.kind === 'message' ? messageItem(open.id, open.text, status) : reasoningItem(this.#setup, open.id, open.text)
  }

  #closeText (status: string): string {
    const open = this.#open
    if (!open) return ''
    this.#open = null
    const at = { item_id: open.id, output_index: open.index }
    const { text } = open
    let out: string
    if (open.kind === 'message') {
      out = this.#event('response.output_text.done', { ...at, content_index: 0, text, logprobs: [] }) +
        this.#event('response.content_part.done', { ...at, content_index: 0, part: outputText(text) })
    } else if (this.#setup.summarize) {
      const part = { type: 'summary_text', text }
      out = this.#event('response.reasoning_summary_text.done', { ...at, summary_index: 0, text }) +
        this.#event('response.reasoning_summary_part.done', { ...at, summary_index: 0, part })
    } else {
      out = this.#event('response.reasoning_text.done', { ...at, content_index: 0, text }) +
        this.#event('response.content_part.done', { ...at, content_index: 0, part: { type: 'reasoning_text', text } })
    }
    const item = this.#finished(open, status)
    this.#output[open.index] = item
    return out + this.#event('response.output_item.done', { output_index: open.index, item })
  }

  #toolCall (delta: ToolCallDelta): string {
    const chatIndex = delta.index ?? 0
    const fragment = typeof delta.function?.arguments === 'string' ? delta.function.arguments : ''
    const known = this.#calls.get(chatIndex)
    if (known) {
      known.args += fragment
      // A custom tool's input is JSON-wrapped upstream: it is unwrapped, and sent, once complete.
      if (known.done || known.custom || fragment === '') return ''
      return this.#event('response.function_call_arguments.delta', { item_id: known.id, output_index: known.index, delta: fragment })
    }
    this.#heldWhitespace = ''
    let out = this.#closeText('completed')
    const index = this.#output.length
    const chatName = delta.function?.name ?? ''
    const callId = typeof delta.id === 'string' && delta.id !== '' ? delta.id : newToolCallId()
    const custom = this.#setup.names.origin(chatName).custom
    const call: CallState = { index, id: '', callId, chatName, custom, args: '', done: false }
    const item = this.#callItem(call, 'in_progress')
    call.id = item.id!
    this.#calls.set(chatIndex, call)
    this.#output.push(item)
    out += this.#event('response.output_item.added', { output_index: index, item })
    if (fragment !== '') out += this.#toolCall({ index: chatIndex, function: { arguments: fragment } })
    return out
  }

  #callItem (call: CallState, status: string): Item {
    return callItem(this.#setup, call.index, call.chatName, call.callId, call.args, status)
  }

  #closeCalls (status: string): string {
    let out = ''
    for (const call of this.#calls.values()) {
      if (call.done) continue
      call.done = true
      const at = { item_id: call.id, output_index: call.index }
      const item = this.#callItem(call, status)
      if (call.custom) {
        const input = customInput(call.args)
        if (input !== '') out += this.#event('response.custom_tool_call_input.delta', { ...at, delta: input })
        out += this.#event('response.custom_tool_call_input.done', { ...at, input })
      } else {
        out += this.#event('response.function_call_arguments.done', { ...at, name: item.name, arguments: call.args })
      }
      this.#output[call.index] = item
      out += this.#event('response.output_item.done', { output_index: call.index, item })
    }
    return out
  }
}

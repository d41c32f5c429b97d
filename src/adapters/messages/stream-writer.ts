import type { GatewayError } from '../../errors.ts'
import { namedEvent, type EventWriter } from '../event-writer.ts'
import type { Chunk } from '../chunk-transforms.ts'
import type { ToolCallDelta } from '../tool-calls.ts'
import type { Usage } from '../usage.ts'
import { toAnthropicError } from './errors.ts'
import { newMessageId, toClientToolId } from './ids.ts'
import { anthropicUsage, EMPTY_USAGE, stopReason, thinkingSignature } from './response.ts'

// Normalised chat chunks → Anthropic's block state machine (wire-apis §2.5). The SDKs push blocks positionally and
// Claude Code rejects deltas for unopened, closed or differently typed blocks, so: indexes dense from 0, one block
// open at a time, each delta typed for its block, no empty text block, and message_stop last.

interface Call {
  id: string
  name: string
  args: string
  state: 'queued' | 'live' | 'closed'
}

type Open = { kind: 'thinking', index: number } | { kind: 'text', index: number } | { kind: 'tool', index: number, call: Call }

export interface MessagesWriterOptions {
  /** The model name the client asked for, echoed in message_start. */
  model: string
  requestId: string
  /** false for `thinking.display: "omitted"`: reasoning is left out. */
  showThinking: boolean
  /** The prompt's estimated size, for a context overflow reported mid-stream. */
  estimate?: () => number
}

const PING = namedEvent('ping', { type: 'ping' })

/** Whether a call's arguments so far are a whole JSON value: only then can another call's block open after it. */
function complete (args: string): boolean {
  if (args.trim() === '') return false
  try {
    JSON.parse(args)
    return true
  } catch {
    return false
  }
}

export class MessagesEventWriter implements EventWriter {
  readonly #options: MessagesWriterOptions
  readonly #id = newMessageId()
  #started = false
  #next = 0
  #open: Open | null = null
  #thinking = ''
  readonly #calls = new Map<number, Call>()
  /** Calls that began while another call's block was still open (interleaved parallel calls), in order. */
  readonly #queue: Call[] = []
  #called = false
  #finish: string | null = null
  #usage: Usage | null = null
  #out = ''

  constructor (options: MessagesWriterOptions) {
    this.#options = options
  }

  chunk (chunk: Chunk): string {
    this.#out = ''
    this.#start()
    if (chunk.usage) this.#usage = chunk.usage
    for (const choice of chunk.choices ?? []) {
      if (choice.index !== 0) continue
      const delta = choice.delta ?? {}
      const reasoning = delta.reasoning_content
      if (typeof reasoning === 'string' && reasoning !== '' && this.#options.showThinking) this.#thinkingDelta(reasoning)
      if (typeof delta.content === 'string' && delta.content !== '') this.#textDelta(delta.content)
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls) this.#toolDelta(call)
        this.#promote()
      }
      if (choice.finish_reason) this.#finish = choice.finish_reason
    }
    return this.#out
  }

  end (): string {
    this.#out = ''
    this.#start()
    this.#closeAll()
    this.#emit('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason(this.#finish, this.#called), stop_sequence: null },
      usage: anthropicUsage(this.#usage)
    })
    this.#emit('message_stop', { type: 'message_stop' })
    return this.#out
  }

  fail (error: GatewayError): string {
    return namedEvent('error', toAnthropicError(error, this.#options.requestId, this.#options.estimate).body)
  }

  /** A ping; message_start first when the upstream has not answered yet, so the client knows the message began. */
  heartbeat (): string {
    if (this.#started) return PING
    this.#out = ''
    this.#start()
    return this.#out + PING
  }

  #emit (type: string, payload: unknown): void {
    this.#out += namedEvent(type, payload)
  }

  #start (): void {
    if (this.#started) return
    this.#started = true
    this.#emit('message_start', {
      type: 'message_start',
      message: { id: this.#id, type: 'message', role: 'assistant', model: this.#options.model, content: [], stop_reason: null, stop_sequence: null, usage: EMPTY_USAGE }
    })
  }

  #openBlock (block: Record<string, unknown>): number {
    const index = this.#next++
    this.#emit('content_block_start', { type: 'content_block_start', index, content_block: block })
    return index
  }

  #delta (index: number, delta: Record<string, unknown>): void {
    this.#emit('content_block_delta', { type: 'content_block_delta', index, delta })
  }

  #close (): void {
    const open = this.#open
    if (open === null) return
    if (open.kind === 'thinking') this.#delta(open.index, { type: 'signature_delta', signature: thinkingSignature(this.#thinking) })
    if (open.kind === 'tool') open.call.state = 'closed'
    this.#emit('content_block_stop', { type: 'content_block_stop', index: open.index })
    this.#open = null
  }

  /** Closes the open block, then writes every queued call as a whole block. */
  #closeAll (): void {
    this.#close()
    while (this.#queue.length > 0) {
      this.#openCall(this.#queue.shift()!)
      this.#close()
    }
  }

  #thinkingDelta (text: string): void {
    if (this.#open?.kind !== 'thinking') {
      // Reasoning after text or a tool call opens a new thinking block (CCR #1725: never into another block).
      this.#closeAll()
      this.#thinking = ''
      this.#open = { kind: 'thinking', index: this.#openBlock({ type: 'thinking', thinking: '', signature: '' }) }
    }
    this.#thinking += text
    this.#delta(this.#open.index, { type: 'thinking_delta', thinking: text })
  }

  #textDelta (text: string): void {
    if (this.#open?.kind !== 'text') {
      // A whitespace-only fragment (Qwen's "\n\n" after thinking) would open an empty text block, which poisons
      // Claude Code's history (claude-code #50082): dropped until real text comes.
      if (text.trim() === '') return
      this.#closeAll()
      this.#open = { kind: 'text', index: this.#openBlock({ type: 'text', text: '' }) }
    }
    this.#delta(this.#open.index, { type: 'text_delta', text })
  }

  #openCall (call: Call): void {
    call.state = 'live'
    const index = this.#openBlock({ type: 'tool_use', id: call.id, name: call.name, input: {} })
    this.#open = { kind: 'tool', index, call }
    if (call.args !== '') this.#delta(index, { type: 'input_json_delta', partial_json: call.args })
  }

  /**
   * The pipeline's normalised tool deltas: a call's first delta has its id and name (DashScope's `id:""`
   * continuations are already folded into the call they continue), later ones an argument fragment.
   */
  #toolDelta (delta: ToolCallDelta): void {
    const index = delta.index ?? 0
    const fragment = delta.function?.arguments ?? ''
    let call = this.#calls.get(index)
    if (!call) {
      if (typeof delta.id !== 'string' || delta.id === '') return
      call = { id: toClientToolId(delta.id), name: delta.function?.name ?? '', args: '', state: 'queued' }
      this.#calls.set(index, call)
      this.#called = true
      const open = this.#open
      if (open?.kind === 'tool' && (this.#queue.length > 0 || !complete(open.call.args))) {
        // Another call is still being written: this one waits, so neither block is cut short.
        this.#queue.push(call)
      } else {
        this.#close()
        this.#openCall(call)
      }
    }
    if (fragment === '') return
    call.args += call.state === 'closed' ? '' : fragment
    if (call.state === 'live') this.#delta(this.#open!.index, { type: 'input_json_delta', partial_json: fragment })
  }

  /** Once the open call's arguments are whole, the next queued call gets its block, with what it buffered so far. */
  #promote (): void {
    while (this.#queue.length > 0 && this.#open?.kind === 'tool' && complete(this.#open.call.args)) {
      this.#close()
      this.#openCall(this.#queue.shift()!)
    }
  }
}

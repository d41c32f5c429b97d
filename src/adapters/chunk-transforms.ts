import { normaliseToolCall, ToolCallNormaliser, type ChunkChoice, type ToolCallDelta } from './tool-calls.ts'
import type { Usage } from './usage.ts'
import { parseXmlToolCalls, type XmlToolCallParser } from './xml-tools/parser.ts'
import type { OpenAIToolCall } from './xml-tools/protocol.ts'
import { isRecord } from './records.ts'

// The changes the gateway makes to an answer, on chunks (streams) or on the whole completion (JSON). Each applies
// only where it is needed; a stream chunk that needs none of them is never parsed (see chat-stream.ts).

export interface AnswerOptions {
  /** Show reasoning as `<think>…</think>` inside content, for clients that read nothing else. */
  thinkTags: boolean
  /** Set for upstreams without native tool calling: tool calls are parsed out of the text. */
  xmlTools: (() => XmlToolCallParser) | null
}

/** A non-streamed chat answer, as upstreams send it and as the gateway returns it. */
export interface ChatCompletion {
  id?: string
  object?: string
  created?: number
  model?: string
  choices?: Array<{
    index: number
    message?: { content?: string | null } & Record<string, any>
    finish_reason?: string | null
    logprobs?: unknown
  }>
  usage?: Usage | null
  [key: string]: unknown
}

/** One chunk of a streamed chat answer. */
export interface Chunk {
  id?: string
  choices?: ChunkChoice[]
  usage?: Usage | null
  [key: string]: unknown
}

/**
 * A chunk the transforms cannot work on (`"choices":"x"`, `"tool_calls":{}`): thrown rather than guessed around.
 * In a stream it ends the stream with an upstream_protocol error event (the relay guards every frame).
 */
export class ChunkShapeError extends TypeError {
  override name = 'ChunkShapeError'
}

/**
 * Checks the parts of a parsed chunk the transforms rely on: an object whose usage, choices, deltas and tool calls
 * have their types. Call it before `StreamTransforms.apply`.
 */
export function checkChunkShape (chunk: unknown): asserts chunk is Chunk {
  if (!isRecord(chunk)) throw new ChunkShapeError('the chunk is not an object')
  if (chunk.usage != null && !isRecord(chunk.usage)) throw new ChunkShapeError('"usage" is not an object')
  if (chunk.choices === undefined) return
  if (!Array.isArray(chunk.choices)) throw new ChunkShapeError('"choices" is not a list')
  for (const choice of chunk.choices) {
    if (!isRecord(choice)) throw new ChunkShapeError('a choice is not an object')
    if (choice.delta == null) continue
    if (!isRecord(choice.delta)) throw new ChunkShapeError('"delta" is not an object')
    const calls = choice.delta.tool_calls
    if (calls == null) continue
    if (!Array.isArray(calls)) throw new ChunkShapeError('"tool_calls" is not a list')
    for (const call of calls) {
      if (!isRecord(call) || (call.function != null && !isRecord(call.function))) throw new ChunkShapeError('a tool call is not an object')
    }
  }
}

/** vLLM (0.17+) and Ollama name the reasoning field `reasoning`; clients such as Roo Code read `reasoning_content`. */
export function renameReasoning (holder: Record<string, unknown> | undefined): void {
  if (!holder || typeof holder.reasoning !== 'string') return
  if (holder.reasoning_content == null) holder.reasoning_content = holder.reasoning
  delete holder.reasoning
}

/** Roo Code reads cache usage at the top level of `usage` (wire contract §3.4); DashScope nests it. */
export function mirrorCacheUsage (usage: Usage | null | undefined): void {
  if (!usage) return
  const details = usage.prompt_tokens_details as { cached_tokens?: number | null, cache_creation_input_tokens?: number } | null | undefined
  const record = usage as Record<string, unknown>
  if (typeof details?.cached_tokens === 'number' && record.cache_read_input_tokens === undefined) record.cache_read_input_tokens = details.cached_tokens
  if (typeof details?.cache_creation_input_tokens === 'number' && record.cache_creation_input_tokens === undefined) record.cache_creation_input_tokens = details.cache_creation_input_tokens
}

const NOTHING = { content: '', calls: [] as OpenAIToolCall[] }

const toDeltas = (calls: OpenAIToolCall[], first: number): ToolCallDelta[] =>
  calls.map((call, i) => ({ index: first + i, id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } }))

/** The per-stream state behind the chunk transforms. */
export class StreamTransforms {
  readonly #options: AnswerOptions
  readonly #toolCalls = new ToolCallNormaliser()
  readonly #xml = new Map<number, XmlToolCallParser>()
  readonly #thinking = new Set<number>()

  constructor (options: AnswerOptions) {
    this.#options = options
  }

  /** True when `finish_reason: "stop"` chunks need a look (a choice emitted tool calls, or think tags may be open). */
  get watchesFinish (): boolean {
    return this.#thinking.size > 0 || this.#xml.size > 0 || this.#toolCalls.hasAny
  }

  /** One upstream chunk in, the chunks to send out (none, one, or several when tool-call deltas are split). */
  apply (chunk: Chunk): Chunk[] {
    mirrorCacheUsage(chunk.usage)
    const choices = chunk.choices ?? []
    if (choices.length === 0) return [chunk]
    const out: Chunk[] = []
    for (const choice of choices) {
      for (const part of this.#choice(choice)) out.push({ ...chunk, choices: [part] })
    }
    if (out.length === 0 && chunk.usage) out.push({ ...chunk, choices: [] })
    return out
  }

  #choice (choice: ChunkChoice): ChunkChoice[] {
    const delta = choice.delta ?? {}
    renameReasoning(delta)
    let finish = choice.finish_reason ?? null
    let extra: ToolCallDelta[] = []
    if (this.#options.xmlTools && typeof delta.content === 'string') extra = this.#parseXml(choice.index, delta, finish !== null)
    else if (this.#options.xmlTools && finish !== null) extra = this.#parseXml(choice.index, delta, true)
    if (this.#options.thinkTags) this.#thinkTags(choice.index, delta, finish !== null)

    const deltas = [...(delta.tool_calls ?? []), ...extra]
    delete delta.tool_calls
    const groups = deltas.length > 0 ? this.#toolCalls.normalise(choice.index, deltas) : []
    if (finish === 'stop' && this.#toolCalls.hasCalls(choice.index)) finish = 'tool_calls'

    const base = { ...choice, delta, logprobs: choice.logprobs ?? null }
    const parts: ChunkChoice[] = groups.map(group => ({ ...base, delta: { ...delta, tool_calls: group }, finish_reason: null }))
    // Whatever else the delta carried goes with the first part; finish_reason always on the last.
    for (let i = 1; i < parts.length; i++) parts[i].delta = { tool_calls: parts[i].delta!.tool_calls }
    const meaningful = Object.entries(delta).some(([key, value]) => key !== 'tool_calls' && value !== null && value !== '' && !(key === 'role' && parts.length > 0))
    if (parts.length === 0 && (meaningful || finish !== null)) parts.push({ ...base, finish_reason: finish })
    else if (parts.length > 0) parts[parts.length - 1].finish_reason = finish
    return parts
  }

  #parseXml (index: number, delta: ChunkChoice['delta'] & object, finished: boolean): ToolCallDelta[] {
    let parser = this.#xml.get(index)
    if (!parser) {
      parser = this.#options.xmlTools!()
      this.#xml.set(index, parser)
    }
    const before = parser.callCount
    const pushed = typeof delta.content === 'string' ? parser.push(delta.content) : NOTHING
    const flushed = finished ? parser.flush() : NOTHING
    const content = pushed.content + flushed.content
    // Text held back (a possible tag start) leaves '' behind, which the chunk filter then drops.
    if (typeof delta.content === 'string' || content !== '') delta.content = content
    return toDeltas([...pushed.calls, ...flushed.calls], before)
  }

  #thinkTags (index: number, delta: ChunkChoice['delta'] & object, finished: boolean): void {
    let text = ''
    const reasoning = delta.reasoning_content
    if (typeof reasoning === 'string' && reasoning !== '') {
      if (!this.#thinking.has(index)) {
        this.#thinking.add(index)
        text += '<think>'
      }
      text += reasoning
    }
    delete delta.reasoning_content
    const content = typeof delta.content === 'string' ? delta.content : ''
    if (this.#thinking.has(index) && (content !== '' || finished)) {
      this.#thinking.delete(index)
      text += '</think>\n\n'
    }
    if (text !== '') delta.content = text + content
  }
}

/** The same changes on a complete, non-streamed answer. */
export function transformCompletion (completion: ChatCompletion, options: AnswerOptions): ChatCompletion {
  mirrorCacheUsage(completion.usage)
  for (const choice of completion.choices ?? []) {
    const message = choice.message
    if (!('logprobs' in choice)) choice.logprobs = null
    if (!message) continue
    if (!('refusal' in message)) message.refusal = null
    renameReasoning(message)
    if (options.xmlTools && typeof message.content === 'string') {
      const { content, calls } = parseXmlToolCalls(message.content)
      if (calls.length > 0) {
        message.content = content
        message.tool_calls = calls
      }
    }
    if (options.thinkTags && typeof message.reasoning_content === 'string' && message.reasoning_content !== '') {
      message.content = `<think>${message.reasoning_content}</think>\n\n${message.content ?? ''}`
      delete message.reasoning_content
    }
    if (Array.isArray(message.tool_calls) && message.tool_calls.length > 0) {
      message.tool_calls = message.tool_calls.map(call => normaliseToolCall(call))
      if (choice.finish_reason === 'stop') choice.finish_reason = 'tool_calls'
    }
  }
  return completion
}

import type { ChatCompletion, Chunk } from '../adapters/chunk-transforms.ts'
import type { Usage } from '../adapters/usage.ts'
import type { GatewayError } from '../errors.ts'
import type { EventWriter } from '../adapters/event-writer.ts'

// DashScope serves Qwen3 thinking as a stream only (wire-contract §1.3: "Stream-only: Qwen3 commercial in thinking
// mode"), yet clients ask for non-streamed answers with thinking on (Claude Code falls back to one when a stream
// fails; the Responses API and Anthropic SDKs ask for them by default). Such a request is sent upstream as a stream,
// and its normalised chunks gathered here into the chat answer a non-streamed call would have returned.

interface GatheredCall {
  id: string
  type: 'function'
  function: { name: string, arguments: string }
}

export class GatheredAnswer implements EventWriter {
  #content = ''
  #reasoning = ''
  readonly #calls = new Map<number, GatheredCall>()
  #finish: string | null = null
  #usage: Usage | null = null
  #id: string | undefined
  /** Set when the stream failed: the request then fails with it, as a non-streamed call would have. */
  error: GatewayError | null = null

  chunk (chunk: Chunk): string {
    this.#id ??= chunk.id
    if (chunk.usage) this.#usage = chunk.usage
    for (const choice of chunk.choices ?? []) {
      if (choice.index !== 0) continue
      const delta = choice.delta ?? {}
      if (typeof delta.content === 'string') this.#content += delta.content
      if (typeof delta.reasoning_content === 'string') this.#reasoning += delta.reasoning_content
      for (const call of delta.tool_calls ?? []) {
        const index = call.index ?? 0
        const known = this.#calls.get(index)
        if (known) known.function.arguments += call.function?.arguments ?? ''
        else this.#calls.set(index, { id: call.id ?? '', type: 'function', function: { name: call.function?.name ?? '', arguments: call.function?.arguments ?? '' } })
      }
      if (choice.finish_reason) this.#finish = choice.finish_reason
    }
    return ''
  }

  end (): string {
    return ''
  }

  fail (error: GatewayError): string {
    this.error ??= error
    return ''
  }

  heartbeat (): string {
    return ''
  }

  /** The gathered answer, in the shape of a non-streamed chat completion. */
  completion (): ChatCompletion {
    const message: Record<string, unknown> = { role: 'assistant', content: this.#content }
    if (this.#reasoning !== '') message.reasoning_content = this.#reasoning
    if (this.#calls.size > 0) message.tool_calls = [...this.#calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call)
    return { id: this.#id, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: this.#finish }], usage: this.#usage }
  }
}

import type { Chunk } from './chunk-transforms.ts'
import type { GatewayError } from '../errors.ts'

/**
 * How one API family writes a streamed answer. The pipeline parses every upstream frame, applies the answer
 * transforms (tool-call deltas normalised, XML tool calls parsed out, `reasoning` renamed `reasoning_content`,
 * cache usage mirrored), and hands each resulting chat chunk to the writer, which returns the SSE text to send:
 * any number of events, possibly none ('').
 *
 * What the writer sees, in order:
 * - chunks with one choice each: `delta.role`, `delta.content`, `delta.reasoning_content`, `delta.tool_calls`
 *   (the first delta of a call carries `index`, `id`, `type`, `function.name` and `arguments: ""`; later ones only
 *   `index` and an `arguments` fragment), and `finish_reason` on the last chunk of a choice (`tool_calls`
 *   whenever a call was emitted, even if the upstream said `stop`);
 * - usually a last chunk with `choices: []` and the `usage` (the pipeline always asks the upstream for it);
 * - then exactly one of `end()` (the upstream finished cleanly) or `fail(error)` (it did not, or the gateway
 *   is shutting down). After either, nothing more is asked of the writer.
 */
export interface EventWriter {
  /** The events for one normalised chunk ('' for none). May throw on a chunk it cannot work with: the stream then fails. */
  chunk (chunk: Chunk): string
  /** The upstream finished the answer: the family's closing events. */
  end (): string
  /** The answer cannot be completed: the family's error events (whatever was already sent stays sent). */
  fail (error: GatewayError): string
  /** Sent when the stream has been silent for one heartbeat interval (a comment, or a family's ping event). */
  heartbeat (): string
}

/** One named SSE event: `event:` for clients that dispatch on it (the Anthropic SDK drops frames without one). */
export const namedEvent = (type: string, payload: unknown) => `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`

export const COMMENT_HEARTBEAT = ': keep-alive\n\n'

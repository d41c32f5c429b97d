import type { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http'

/** Pre-stream DashScope errors (wire contract 1.8 and 5). */
export type ErrorName =
  | 'invalid_api_key'
  | 'invalid_api_key_unwrapped'
  | 'access_denied'
  | 'limit_requests'
  | 'rate_quota'
  | 'allocation_quota'
  | 'allocation_quota_unwrapped'
  | 'data_inspection_failed'
  | 'arrearage'
  | 'context_overflow'
  | 'model_not_found'
  | 'internal_error'
  | 'bad_gateway_html'
  | 'service_unavailable_html'

export interface Framing {
  noDone?: boolean
  dataAfterDone?: boolean
  crlf?: boolean
  splitJson?: boolean
  batched?: boolean
  comments?: boolean
  extraNulls?: boolean
  cumulative?: boolean
  /** JSON written as Python's json.dumps does by default: `", "` and `": "` separators (never a newline inside data). */
  spaced?: boolean
}

/** One SSE event far larger than any real chunk (a broken or hostile upstream). */
export interface HugeFrame {
  /** Size of the event in bytes, its `data: ` prefix included. */
  bytes: number
  /**
   * false (default): the event never ends: no closing JSON, no blank line, and the connection then stays open
   * until the client leaves. true: a valid content chunk of that size, followed by the rest of the stream.
   */
  complete?: boolean
}

/**
 * An event the gateway cannot read, followed by the rest of the stream as usual.
 * - usage: truncated JSON that contains `"usage":{`
 * - tool_calls: truncated JSON that contains `"tool_calls":[`
 * - choices_string: valid JSON, `"choices":"x"` next to a `"usage":{...}` object
 * - tool_calls_object: valid JSON, a delta with `"tool_calls":{}` (nothing marks it as needing a parse)
 */
export type MalformedKind = 'usage' | 'tool_calls' | 'choices_string' | 'tool_calls_object'

export interface MalformedFrame {
  kind: MalformedKind
  /**
   * Puts the broken event behind backpressure: first one content event of this many bytes, then six of 16 KiB, then
   * the broken one, each in a write of its own 10 ms apart. A client that does not read while the large one arrives
   * makes the gateway pause the upstream, and the broken event waits in the paused upstream body (see hostile.ts).
   */
  paddingBytes?: number
}

export interface ToolCallSpec {
  name: string
  arguments: string
}

export interface Scenario {
  reply?: string
  chunkSize?: number
  ttfbMs?: number
  firstChunkDelayMs?: number
  intervalMs?: number
  reasoning?: string
  reasoningField?: 'reasoning_content' | 'reasoning'
  toolCalls?: ToolCallSpec[]
  toolCallQuirks?: boolean
  /** Other Qwen servers (wire contract §5): the first delta has neither id nor name, which arrive in the second; continuations send `"name":""` and `"id":null`. */
  toolCallsNameLate?: boolean
  error?: ErrorName
  retryAfter?: number
  midStream?: 'inspection' | 'event_error' | 'reset'
  /** Text chunks sent before a midStream, hugeFrame or malformedFrame fault; default 2. */
  midStreamAfter?: number
  hugeFrame?: HugeFrame
  malformedFrame?: MalformedFrame
  resetBeforeHeaders?: boolean
  stall?: 'headers' | 'after_first'
  framing?: Framing
  noUsage?: boolean
  usage?: { prompt_tokens?: number, completion_tokens?: number, cached_tokens?: number }
}

export interface SimulatorOptions {
  apiKeys?: string[]
  models?: string[]
  modelsStatus?: number
  strictModels?: boolean
  defaults?: Scenario
  host?: string
  port?: number
}

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  raw: string
  body: any
  startedAt: number
  firstByteAt?: number
  finishedAt?: number
  clientClosedAt?: number
}

export type SimulatorEvent = 'request' | 'client-closed' | 'finished'

export interface Simulator {
  url: string
  origin: string
  requests: RecordedRequest[]
  events: EventEmitter
  waitFor (event: SimulatorEvent, timeoutMs?: number): Promise<RecordedRequest>
  /**
   * Lets a test decide a chat request's scenario from the request itself (its key, how many came before ...);
   * what it returns is merged over the body's `sim`. Pass null to remove.
   */
  setOverride (override: ScenarioOverride | null): void
  close (): Promise<void>
}

export type ScenarioOverride = (request: RecordedRequest, chatIndex: number) => Scenario | undefined

/** Options after defaults were applied. */
export interface SimulatorConfig {
  override: ScenarioOverride | null
  /** Chat requests seen so far, for overrides that fail the first N. */
  chatCount: number
  apiKeys: string[]
  models: string[]
  modelsStatus?: number
  strictModels: boolean
  defaults: Scenario
}

import type { ChatCompletionRequest } from '../schemas/chat.ts'

const INCLUDE_USAGE = Buffer.from(',"stream_options":{"include_usage":true}}')

const wantsUsageAdded = (body: ChatCompletionRequest) => body.stream === true && body.stream_options?.include_usage !== true

/**
 * The bodies to send upstream for a chat request, per target model. Streams always ask for usage (so tokens are
 * counted even when the client did not ask; the extra chunk is dropped on the way back). Otherwise the client's
 * bytes go out as they came, so upstream prefix caches see the same request every time. Only an alias or a
 * fallback under another id needs a re-serialised body, which keeps the client's key order.
 */
export function chatPayloads (raw: Buffer, body: ChatCompletionRequest): (model: string) => Buffer | string {
  let own: Buffer | string
  if (!wantsUsageAdded(body)) {
    own = raw
  } else if (!('stream_options' in body)) {
    // Append the field before the closing brace instead of re-serialising: every other byte stays the same.
    own = Buffer.concat([raw.subarray(0, raw.lastIndexOf('}')), INCLUDE_USAGE])
  } else {
    own = JSON.stringify({ ...body, stream_options: { ...body.stream_options, include_usage: true } })
  }
  return model => model === body.model ? own : JSON.stringify(withModel(body, model))
}

function withModel (body: ChatCompletionRequest, model: string): ChatCompletionRequest {
  const renamed = { ...body, model }
  if (wantsUsageAdded(body)) renamed.stream_options = { ...body.stream_options, include_usage: true }
  return renamed
}

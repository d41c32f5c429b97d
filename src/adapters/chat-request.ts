import type { ChatCompletionRequest } from '../schemas/chat.ts'

const INCLUDE_USAGE = Buffer.from(',"stream_options":{"include_usage":true}}')

/**
 * The body to send upstream for a chat request. Streams always ask for usage (so tokens are counted even when
 * the client did not ask; the extra chunk is dropped on the way back). Otherwise the client's bytes go out
 * as they came, so upstream prefix caches see the same request every time.
 */
export function chatPayload (raw: Buffer, body: ChatCompletionRequest): Buffer | string {
  if (body.stream !== true || body.stream_options?.include_usage === true) return raw
  if (!('stream_options' in body)) {
    // Append the field before the closing brace instead of re-serialising: every other byte stays the same.
    const close = raw.lastIndexOf('}')
    return Buffer.concat([raw.subarray(0, close), INCLUDE_USAGE])
  }
  return JSON.stringify({ ...body, stream_options: { ...body.stream_options, include_usage: true } })
}

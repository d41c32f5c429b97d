import { randomBytes } from 'node:crypto'

// Anthropic requires tool_use ids to match ^[A-Za-z0-9_-]+$ (wire-apis §4.4); upstream ids usually do (DashScope
// `call_<hex>`, vLLM `chatcmpl-tool-<hex>`) and then pass unchanged both ways. Others (Kimi-style
// `functions.Bash:0`) are encoded reversibly, so the id the client sends back in tool_use/tool_result becomes the
// upstream's own id again.

const VALID = /^[A-Za-z0-9_-]+$/
const ENCODED = 'qgw64_'

/** The id a client sees for an upstream tool call id. */
export function toClientToolId (upstreamId: string): string {
  if (VALID.test(upstreamId)) return upstreamId
  return ENCODED + Buffer.from(upstreamId, 'utf8').toString('base64url')
}

/** The upstream id for an id a client sent back; ids the gateway did not encode pass unchanged. */
export function toUpstreamToolId (clientId: string): string {
  if (!clientId.startsWith(ENCODED)) return clientId
  const encoded = clientId.slice(ENCODED.length)
  const decoded = Buffer.from(encoded, 'base64url').toString('utf8')
  // Only what toClientToolId could have produced: it encodes ids that are not valid as they are.
  if (VALID.test(decoded) || Buffer.from(decoded, 'utf8').toString('base64url') !== encoded) return clientId
  return decoded
}

export const newMessageId = () => `msg_${randomBytes(12).toString('hex')}`

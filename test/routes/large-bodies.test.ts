import t from 'tap'
import { startStack } from '../helper.ts'

// Codex and Claude Code send 40 to 50 KB for a one-line prompt, and long conversations reach megabytes: the agent
// families take bodies up to BODY_LIMIT (32 MiB by default), and refuse larger ones in their own envelope.

const MiB = 1024 * 1024
const LIMIT = 32 * MiB

/** A JSON body of exactly `bytes` bytes: the family's request with one long user text. */
function sized (bytes: number, head: string, tail: string): string {
  return head + 'x'.repeat(bytes - head.length - tail.length) + tail
}

const families = {
  responses: (bytes: number) => sized(bytes, '{"model":"qwen-plus","sim":{"reply":"ok"},"input":"', '"}'),
  messages: (bytes: number) => sized(bytes, '{"model":"claude-sonnet-4-5","max_tokens":16,"sim":{"reply":"ok"},"messages":[{"role":"user","content":"', '"}]}')
}

t.test('a body just under BODY_LIMIT\'s default reaches the upstream; one byte over gets a 413 in the family\'s envelope', async t => {
  const { baseURL, sim } = await startStack(t)
  for (const [family, body] of Object.entries(families)) {
    const post = (bytes: number) => fetch(`${baseURL}/${family}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(bytes) })
    const atLimit = await post(LIMIT)
    t.equal(atLimit.status, 200, `${family}: ${LIMIT} bytes answered`)
    await atLimit.text()
    const last = sim.requests.at(-1)!
    t.ok(last.raw.length > LIMIT - 1024, `${family}: the whole prompt went upstream (${last.raw.length} bytes)`)
    const over = await post(LIMIT + 1)
    t.equal(over.status, 413, `${family}: one byte more is refused`)
    const error = await over.json() as any
    if (family === 'messages') t.match(error, { type: 'error', error: { type: 'request_too_large', message: /33554432 bytes/ } })
    else t.match(error, { error: { code: 'request_too_large', message: /33554432 bytes/ } })
  }
})

import t from 'tap'
import { createHash } from 'node:crypto'
import { sessionId } from '../../src/sessions.ts'

const longText = (seed: string, size: number) => `${seed} ${'lorem ipsum dolor sit amet, 文脈 '.repeat(Math.ceil(size / 30))}`.slice(0, size)
const system = { role: 'system', content: longText('You are Roo, a coding agent.', 40_000) }
const task = { role: 'user', content: [{ type: 'text', text: '<task>Fix the failing test in src/app.ts</task>' }, { type: 'text', text: longText('<environment_details>', 20_000) }] }
const turn = (n: number) => [{ role: 'assistant', content: `step ${n}` }, { role: 'user', content: `result ${n}` }]

t.test('every turn of one conversation has the same session', async t => {
  const first = sessionId(undefined, { messages: [system, task] })
  const later = sessionId(undefined, { messages: [system, task, ...turn(1), ...turn(2)] })
  t.equal(later, first)
  t.match(first, /^c:[0-9a-f]{24}$/)
})

t.test('another task, system prompt, or a change at either end of a long prompt is another session', async t => {
  const base = sessionId(undefined, { messages: [system, task] })
  const otherTask = { ...task, content: [{ type: 'text', text: '<task>Write the README</task>' }, task.content[1]] }
  t.not(sessionId(undefined, { messages: [system, otherTask] }), base)
  t.not(sessionId(undefined, { messages: [{ role: 'system', content: `${system.content}!` }, task] }), base, 'the tail counts')
  t.not(sessionId(undefined, { messages: [{ role: 'system', content: `!${system.content}` }, task] }), base, 'the head counts')
  t.not(sessionId(undefined, { messages: [{ role: 'system', content: system.content.slice(1) }, task] }), base, 'the length counts')
  t.not(sessionId(undefined, { messages: [{ role: 'developer', content: 'Be terse.' }, task] }), base)
})

t.test('content as text or as one text part are told apart, and many parts still count', async t => {
  const asText = sessionId(undefined, { messages: [{ role: 'user', content: 'hi' }] })
  const asParts = sessionId(undefined, { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] })
  t.not(asText, asParts)
  const parts = (last: string) => Array.from({ length: 100 }, (_, i) => ({ type: 'text', text: i === 99 ? last : `part ${i}` }))
  t.not(sessionId(undefined, { messages: [{ role: 'user', content: parts('a') }] }), sessionId(undefined, { messages: [{ role: 'user', content: parts('b') }] }))
})

t.test('the client may name the session: a header first, then `user`', async t => {
  t.equal(sessionId('abc', { user: 'u1', messages: [system] }), 'h:abc')
  t.equal(sessionId('', { user: 'u1', messages: [system] }), 'u:u1')
  t.equal(sessionId(undefined, { user: 'x'.repeat(500) }).length, 202)
  t.equal(sessionId(undefined, {}), sessionId(undefined, { messages: [] }))
})

t.test('short prompts keep the session a digest of their whole JSON gave them (affinity survives the sampling)', async t => {
  const whole = (system: unknown, first: unknown) =>
    `c:${createHash('sha256').update(JSON.stringify(system)).update('\u0000').update(JSON.stringify(first)).digest('hex').slice(0, 24)}`
  const parts = [{ type: 'text', text: 'look at "this"' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }]
  t.equal(sessionId(undefined, { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }] }), whole('Be brief.', 'hi'))
  t.equal(sessionId(undefined, { messages: [{ role: 'user', content: parts }] }), whole(null, parts))
})

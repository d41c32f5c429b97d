import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startStack } from '../helper.ts'
import { CLAUDE, describeRun, jsonLines, requireCli, runCli, tempDir } from './helpers/cli.ts'
import { chatRequests, clientTestEnv, offeredTools, toolResults, toolRoundTrip } from './helpers/tool-turns.ts'

// Claude Code (npm @anthropic-ai/claude-code; its postinstall links the native binary of
// @anthropic-ai/claude-code-linux-x64 and siblings over bin/claude.exe), headless as `claude -p`, through the
// gateway's /v1/messages in front of the simulator. ANTHROPIC_BASE_URL is the gateway's origin; with no
// ANTHROPIC_MODEL it asks for claude-opus-5-5, which the default claude-* alias sends to qwen3-coder-plus.
// It calls /v1/messages?beta=true, with x-api-key for ANTHROPIC_API_KEY and Bearer for ANTHROPIC_AUTH_TOKEN.

// Each CLI run takes about a second here, and is killed after 60 s; the file's four runs get more than .taprc's 60 s.
t.setTimeout(260_000)

const UPSTREAM_MODEL = 'qwen3-coder-plus'
const KEY = 'claude-code-client-key'

/** Everything Claude Code needs to use the gateway and nothing else: no telemetry, updates or error reports. */
const claudeEnv = (origin: string, home: string, auth: Record<string, string>) => ({
  PATH: process.env.PATH,
  HOME: home,
  ANTHROPIC_BASE_URL: origin,
  ...auth,
  DISABLE_TELEMETRY: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_ERROR_REPORTING: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  NO_COLOR: '1',
  TERM: 'dumb'
})

interface Case {
  tool: 'Read' | 'Bash'
  auth: Record<string, string>
  input: (file: string) => Record<string, string>
  /** Reasoning the model streams before its tool call: a thinking block, which Claude Code sends back next turn. */
  reasoning?: string
}

const CASES: Case[] = [
  { tool: 'Read', auth: { ANTHROPIC_API_KEY: KEY }, input: file => ({ file_path: file }) },
  { tool: 'Bash', auth: { ANTHROPIC_AUTH_TOKEN: KEY }, input: file => ({ command: `cat ${file}`, description: 'Show the note' }) },
  { tool: 'Read', auth: { ANTHROPIC_API_KEY: KEY }, input: file => ({ file_path: file }), reasoning: 'I should read note.txt.' }
]

for (const { tool, auth, input, reasoning } of CASES) {
  const thinking = reasoning === undefined ? '' : ', thinking first'
  t.test(`claude -p with ${Object.keys(auth)[0]}: the model calls ${tool} on a file${thinking}, then answers with its content`, async t => {
    const claude = requireCli(t, CLAUDE)
    if (claude === undefined) return
    t.comment(`${claude.version} (${claude.file})`)
    const stack = await startStack(t, { env: clientTestEnv(KEY) })
    const dir = await tempDir(t, 'claude-code')
    const home = join(dir, 'home')
    const work = join(dir, 'work')
    await Promise.all([home, work].map(folder => mkdir(folder, { recursive: true })))
    const secret = `claude-secret-${randomBytes(6).toString('hex')}`
    const file = join(work, 'note.txt')
    await writeFile(file, `${secret}\n`)

    const answer = `The file says: ${secret}`
    const model = toolRoundTrip({
      name: tool,
      arguments: JSON.stringify(input(file)),
      answer: result => result.includes(secret) ? answer : `The tool did not show the file: ${result.slice(0, 300)}`,
      otherwise: 'No tools were offered.'
    })
    stack.sim.setOverride((request, index) => {
      const scenario = model(request, index)
      return scenario?.toolCalls && reasoning !== undefined ? { ...scenario, reasoning } : scenario
    })

    const run = await runCli(t, claude, [
      '-p', '--output-format', 'stream-json', '--verbose', '--allowedTools', 'Read,Bash',
      '--', 'Show me what note.txt says.'
    ], { cwd: work, env: claudeEnv(stack.origin, home, auth), timeoutMs: 60_000 })
    t.equal(run.code, 0, 'claude -p succeeded', { output: describeRun(run) })

    // stream-json: one line per closed content block (as Claude Code keeps them), then the result.
    const lines = jsonLines(run.stdout)
    const blocks = lines.filter(line => line.type === 'assistant').flatMap(line => line.message?.content ?? [])
    t.same(blocks.map(block => block.type), reasoning === undefined ? ['tool_use', 'text'] : ['thinking', 'tool_use', 'text'])
    t.match(blocks.find(block => block.type === 'tool_use'), { name: tool, input: input(file) })
    // Claude Code sends the thinking block back with the gateway's signature on the next turn; that turn must pass.
    if (reasoning !== undefined) t.match(blocks[0], { type: 'thinking', thinking: reasoning, signature: /\S/ }, 'Claude Code got the thinking block')
    const result = lines.find(line => line.type === 'result')
    t.ok(result, 'a result line', { output: describeRun(run) })
    t.match(result, { subtype: 'success', is_error: false, result: answer, num_turns: 2 })
    t.same(result?.permission_denials, [], 'the tool was allowed')

    const upstream = chatRequests(stack.sim.requests)
    // Claude Code may add side requests (titles, summaries); the tool turn is the requests offering the tool.
    const turns = upstream.filter(request => offeredTools(request).includes(tool))
    t.equal(turns.length, 2, 'two model calls: the tool call, then the answer', { paths: upstream.map(request => request.path) })
    if (turns.length < 1) return
    t.equal(turns[0].body.model, UPSTREAM_MODEL, 'claude-* reached the coder model')
    if (turns.length < 2) return
    const results = toolResults(turns[1])
    t.equal(results.length, 1)
    t.match(results[0], secret, `the ${tool} output went back to the model as a tool message`)
  })
}

t.test('claude -p: an upstream context overflow is Claude Code\'s own "Prompt is too long"', async t => {
  const claude = requireCli(t, CLAUDE)
  if (claude === undefined) return
  const stack = await startStack(t, { env: clientTestEnv(KEY) })
  stack.sim.setOverride(() => ({ error: 'context_overflow' }))
  const home = await tempDir(t, 'claude-code')
  const run = await runCli(t, claude, ['-p', '--output-format', 'json', '--', 'A prompt the model cannot take.'], {
    cwd: home,
    env: claudeEnv(stack.origin, home, { ANTHROPIC_API_KEY: KEY }),
    timeoutMs: 60_000
  })
  t.equal(run.code, 1, 'claude -p failed', { output: describeRun(run) })
  const result = jsonLines(run.stdout).find(line => line.type === 'result')
  // Claude Code recognises the wording "prompt is too long: N tokens > M maximum" (§2.7), not the status alone.
  t.match(result, { is_error: true, terminal_reason: 'prompt_too_long', api_error_status: 400, result: /Prompt is too long/ }, 'Claude Code knew the overflow', { output: describeRun(run) })
  t.equal(chatRequests(stack.sim.requests).length, 1, 'one upstream call')
})

import t from 'tap'
import type { Test as Tap } from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startStack } from '../helper.ts'
import { CODEX, describeRun, jsonLines, requireCli, runCli, tempDir } from './helpers/cli.ts'
import { chatRequests, clientTestEnv, offeredTools, toolResults, toolRoundTrip } from './helpers/tool-turns.ts'

// Codex CLI (npm @openai/codex, its native binary in @openai/codex-linux-x64 and siblings), headless as
// `codex exec`, through the gateway's /v1/responses in front of the simulator. Its own CODEX_HOME holds a
// config.toml with a provider for the gateway (wire_api = "responses"); the key comes from env_key.
//
// Codex offers the model `exec_command` ({cmd, login, workdir, ...}; no `shell` tool any more: a call to `shell`
// is answered "unsupported call: shell"), `write_stdin`, `view_image`, the `multi_agent_v1` namespace, goal tools
// and the hosted `web_search`. It sends store:false, the whole history every turn, reasoning.summary "auto" and
// include ["reasoning.encrypted_content"].

// Each CLI run takes about a second here, and is killed after 60 s; the file's three runs get more than .taprc's 60 s.
t.setTimeout(200_000)

const MODEL = 'qwen3-coder-plus'
const KEY = 'codex-client-key'
const KEY_ENV = 'QWEN_GATEWAY_API_KEY'

/** The config.toml for a gateway at baseURL (README material: the same file, with the real URL). */
const codexConfig = (baseURL: string, model = MODEL) => `model = "${model}"
model_provider = "qwen-gateway"
# Codex knows no metadata for Qwen models: it warns and falls back; the window size is ours to give.
model_context_window = 131072
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[features]
# The plugin marketplace would be fetched at start (api.github.com, chatgpt.com): nothing leaves the machine.
plugins = false

[model_providers.qwen-gateway]
name = "Qwen Gateway"
base_url = "${baseURL}"
env_key = "${KEY_ENV}"
wire_api = "responses"
# A test wants the first failure, not Codex's retries (by default 4 per request and 5 per stream).
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 30000
`

interface Turn {
  /** The model Codex asks for; qwen3-coder-plus by default. */
  model?: string
  /** Reasoning the model streams before its tool call: Codex shows it, and replays it with encrypted_content. */
  reasoning?: string
}

/** Codex with its own HOME and CODEX_HOME, configured for a gateway (with a simulator) of its own. */
async function codexSetup (t: Tap, model = MODEL) {
  const codex = requireCli(t, CODEX)
  if (codex === undefined) return
  t.comment(`${codex.version} (${codex.file})`)
  const stack = await startStack(t, { env: clientTestEnv(KEY) })
  const dir = await tempDir(t, 'codex')
  const home = join(dir, 'home')
  const codexHome = join(dir, 'codex-home')
  const work = join(dir, 'work')
  await Promise.all([home, codexHome, work].map(folder => mkdir(folder, { recursive: true })))
  await writeFile(join(codexHome, 'config.toml'), codexConfig(stack.baseURL, model))
  const exec = (prompt: string) => runCli(t, codex, [
    'exec', '--strict-config', '--skip-git-repo-check', '--ephemeral', '--json', '--color', 'never',
    '--sandbox', 'read-only', '--cd', work, prompt
  ], {
    cwd: work,
    env: { PATH: process.env.PATH, HOME: home, CODEX_HOME: codexHome, [KEY_ENV]: KEY, NO_COLOR: '1', TERM: 'dumb' },
    timeoutMs: 60_000
  })
  return { stack, work, exec }
}

async function codexToolTurn (t: Tap, turn: Turn) {
  const setup = await codexSetup(t, turn.model)
  if (setup === undefined) return
  const { stack, work, exec } = setup
  const secret = `codex-secret-${randomBytes(6).toString('hex')}`
  const file = join(work, 'note.txt')
  await writeFile(file, `${secret}\n`)

  const answer = `The file says: ${secret}`
  const model = toolRoundTrip({
    name: 'exec_command',
    // login:false: a login shell would read the machine's profile, and its noise would join the output.
    arguments: JSON.stringify({ cmd: `cat ${file}`, login: false }),
    answer: result => result.includes(secret) ? answer : `The command did not show the file: ${result.slice(0, 300)}`,
    otherwise: 'No tools were offered.'
  })
  stack.sim.setOverride((request, index) => {
    const scenario = model(request, index)
    return scenario?.toolCalls && turn.reasoning !== undefined ? { ...scenario, reasoning: turn.reasoning } : scenario
  })

  const run = await exec('Show me what note.txt says.')
  t.equal(run.code, 0, 'codex exec succeeded', { output: describeRun(run) })

  const events = jsonLines(run.stdout)
  const completed = events.filter(event => event.type === 'item.completed').map(event => event.item)
  const command = completed.find(item => item.type === 'command_execution')
  t.ok(command, 'Codex ran the command', { events })
  t.match(command, { command: /cat .*note\.txt/, exit_code: 0, status: 'completed' })
  t.match(command?.aggregated_output, secret, 'the command read the file')
  const messages = completed.filter(item => item.type === 'agent_message').map(item => item.text)
  t.same(messages, [answer], 'the final answer holds the file content')
  t.ok(events.some(event => event.type === 'turn.completed'), 'the turn completed', { events })
  t.notOk(events.some(event => event.type === 'turn.failed' || event.type === 'error'), 'no failure events', { events })

  const upstream = chatRequests(stack.sim.requests)
  t.equal(upstream.length, 2, 'two model calls: the tool call, then the answer')
  if (upstream.length < 1) return
  const tools = offeredTools(upstream[0])
  t.ok(tools.includes('exec_command'), 'exec_command offered upstream', { tools })
  t.equal(upstream[0].body.model, turn.model ?? MODEL)
  t.equal(upstream[0].body.stream, true)
  if (upstream.length < 2) return
  const results = toolResults(upstream[1])
  t.equal(results.length, 1)
  t.match(results[0], secret, 'the command output went back to the model as a tool message')
  return { events, upstream }
}

t.test('codex exec: the model runs exec_command on a file, then answers with its content', async t => {
  await codexToolTurn(t, {})
})

t.test('codex exec: reasoning before the tool call is shown, and its replay (encrypted_content) is accepted', async t => {
  const thought = 'I should read note.txt with cat.'
  // A model that thinks: the gateway gives earlier turns' reasoning back only to those (not to Qwen-Coder).
  const outcome = await codexToolTurn(t, { model: 'qwen3-max', reasoning: thought })
  if (outcome === undefined) return
  const reasoning = outcome.events.filter(event => event.type === 'item.completed' && event.item.type === 'reasoning')
  t.match(reasoning, [{ item: { text: new RegExp(thought.replace('.', '\\.')) } }], 'Codex showed the reasoning', { events: outcome.events })
  // Codex replays the reasoning item with the gateway's encrypted_content token (store:false, no ids to look up):
  // the gateway opened it and gave the reasoning back to the model next to its tool call.
  const assistant = outcome.upstream[1]?.body?.messages?.find((message: any) => message.role === 'assistant')
  t.match(assistant, { tool_calls: [{ function: { name: 'exec_command' } }], reasoning_content: thought }, 'the replayed reasoning reached the model')
})

t.test('codex exec: an upstream context overflow ends the turn with Codex\'s own context-window message, not retried', async t => {
  const setup = await codexSetup(t)
  if (setup === undefined) return
  setup.stack.sim.setOverride(() => ({ error: 'context_overflow' }))
  const run = await setup.exec('A prompt the model cannot take.')
  t.equal(run.code, 1, 'codex exec failed', { output: describeRun(run) })
  const events = jsonLines(run.stdout)
  // Codex says this only for the code context_length_exceeded (§1.7); other failures read "exceeded retry limit".
  t.match(events.find(event => event.type === 'turn.failed'), { error: { message: /ran out of room in the model's context window/ } }, 'the turn failed', { events })
  t.equal(chatRequests(setup.stack.sim.requests).length, 1, 'one upstream call: the gateway does not retry a context overflow')
})

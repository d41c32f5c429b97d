import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// The coding agents' CLIs (Codex CLI, Claude Code) as npm ships them: devDependencies whose native binaries come
// in platform packages. On a laptop where one cannot run (another platform, --omit=optional) the test skips; under
// CI=true it fails, as the integration tests do for nginx and Redis.

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..')

interface Teardown {
  after (fn: () => unknown): void
}

/** What requireCli needs of a tap test: plan(0, reason) skips it, fail() fails it. */
export interface CliTest extends Teardown {
  plan (n: number, comment: string): void
  fail (message: string): unknown
}

export interface Cli {
  name: string
  /** The npm package that provides it. */
  pkg: string
  /** The file to run, inside node_modules. */
  file: string
}

export const CODEX: Cli = { name: 'codex', pkg: '@openai/codex', file: join(ROOT, 'node_modules', '@openai', 'codex', 'bin', 'codex.js') }
export const CLAUDE: Cli = { name: 'claude', pkg: '@anthropic-ai/claude-code', file: join(ROOT, 'node_modules', '@anthropic-ai', 'claude-code', 'bin', 'claude.exe') }

const inCI = () => process.env.CI === 'true'

/** How to start the CLI: the .js launcher through this Node, a native binary directly. */
function command (cli: Cli, args: string[]): [string, string[]] {
  return cli.file.endsWith('.js') ? [process.execPath, [cli.file, ...args]] : [cli.file, args]
}

/** The CLI's `--version` line, or why it cannot run here. */
export function probeCli (cli: Cli): { version: string } | { problem: string } {
  if (!existsSync(cli.file)) return { problem: `${cli.file} is missing (npm ci installs ${cli.pkg})` }
  const [file, args] = command(cli, ['--version'])
  const result = spawnSync(file, args, { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: tmpdir() } })
  if (result.error) return { problem: `${cli.name} --version: ${result.error.message}` }
  if (result.status !== 0) return { problem: `${cli.name} --version exited with ${result.status ?? result.signal}: ${(result.stderr || result.stdout).trim().slice(0, 500)}` }
  return { version: result.stdout.trim() }
}

/**
 * The CLI's version when it runs here. Otherwise skips the calling test (call this before any assertion), or fails
 * it when CI=true, and returns undefined: the test should return.
 */
export function requireCli (t: CliTest, cli: Cli): string | undefined {
  const probe = probeCli(cli)
  if ('version' in probe) return probe.version
  if (inCI()) t.fail(`${probe.problem}: client tests need ${cli.name} under CI=true`)
  else t.plan(0, `${probe.problem}: skipping; CI=true makes this a failure`)
  return undefined
}

/** A temporary folder, removed when the test ends. */
export async function tempDir (t: Teardown, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `qwen-gateway-${prefix}-`))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
  ms: number
}

export interface RunOptions {
  cwd: string
  /** The whole environment of the CLI: nothing is inherited but what the caller passes. */
  env: Record<string, string | undefined>
  timeoutMs: number
}

/**
 * Runs the CLI to its end with no standard input, in a process group of its own. The group is killed when the
 * timeout passes, and at the end of the test if anything of it is still alive (a launcher's child included).
 */
export function runCli (t: Teardown, cli: Cli, args: string[], options: RunOptions): Promise<CliRun> {
  const [file, argv] = command(cli, args)
  const started = performance.now()
  const child = spawn(file, argv, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    } catch {}
  }
  t.after(killGroup)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    killGroup()
  }, options.timeoutMs)
  return new Promise((resolve, reject) => {
    child.once('error', error => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      // The launcher is gone; a native child it left behind is not.
      killGroup()
      resolve({ code, signal, stdout, stderr, timedOut, ms: Math.round(performance.now() - started) })
    })
  })
}

/** The lines of a JSONL output that parse as JSON objects. */
export function jsonLines (text: string): any[] {
  const out: any[] = []
  for (const line of text.split('\n')) {
    const trimmed = line.trim()
    if (!trimmed.startsWith('{')) continue
    try {
      out.push(JSON.parse(trimmed))
    } catch {}
  }
  return out
}

/** The run as a diagnostic for a failed assertion. */
export const describeRun = (run: CliRun) =>
  `exit ${run.code ?? run.signal}${run.timedOut ? ' (timed out)' : ''} after ${run.ms} ms\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-4000)}`

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
  /** Files that start it, inside node_modules, best first: the first one that runs is used. */
  files: string[]
}

/** A CLI that runs here: the file that started it, and its `--version` line. */
export interface RunnableCli extends Cli {
  file: string
  version: string
}

const modules = (...path: string[]) => join(ROOT, 'node_modules', ...path)

export const CODEX: Cli = { name: 'codex', pkg: '@openai/codex', files: [modules('@openai', 'codex', 'bin', 'codex.js')] }

// bin/claude.exe is a 500-byte placeholder until the package's postinstall links the native binary of
// @anthropic-ai/claude-code-<platform> over it; cli-wrapper.cjs finds and starts that binary when the postinstall
// did not run (--ignore-scripts, or an npm that asks before running install scripts).
export const CLAUDE: Cli = {
  name: 'claude',
  pkg: '@anthropic-ai/claude-code',
  files: [modules('@anthropic-ai', 'claude-code', 'bin', 'claude.exe'), modules('@anthropic-ai', 'claude-code', 'cli-wrapper.cjs')]
}

const inCI = () => process.env.CI === 'true'

/** How to start a file: a .js or .cjs launcher through this Node, a native binary directly. */
function command (file: string, args: string[]): [string, string[]] {
  return /\.c?js$/.test(file) ? [process.execPath, [file, ...args]] : [file, args]
}

/** The first of the CLI's files that answers `--version`, or why none does. */
export function probeCli (cli: Cli): RunnableCli | { problem: string } {
  const problems: string[] = []
  for (const candidate of cli.files) {
    if (!existsSync(candidate)) {
      problems.push(`${candidate} is missing`)
      continue
    }
    const [file, args] = command(candidate, ['--version'])
    const result = spawnSync(file, args, { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: tmpdir() } })
    if (result.status === 0 && result.stdout.trim() !== '') return { ...cli, file: candidate, version: result.stdout.trim() }
    const why = result.error?.message ?? `exit ${result.status ?? result.signal}: ${(result.stderr || result.stdout).trim().slice(0, 300)}`
    problems.push(`${candidate} --version: ${why}`)
  }
  return { problem: `${cli.name} (npm ${cli.pkg}, installed by npm ci) cannot run: ${problems.join('; ')}` }
}

/**
 * The CLI when it runs here. Otherwise skips the calling test (call this before any assertion), or fails it when
 * CI=true, and returns undefined: the test should return.
 */
export function requireCli (t: CliTest, cli: Cli): RunnableCli | undefined {
  const probe = probeCli(cli)
  if ('version' in probe) return probe
  if (inCI()) t.fail(`${probe.problem}: client tests need it under CI=true`)
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
export function runCli (t: Teardown, cli: RunnableCli, args: string[], options: RunOptions): Promise<CliRun> {
  const [file, argv] = command(cli.file, args)
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

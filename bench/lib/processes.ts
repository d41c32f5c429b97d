import { spawn, execFileSync } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { readFileSync, openSync, closeSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { affinityOf } from './pinning.ts'
import type { Pinning } from './pinning.ts'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const HOST = '127.0.0.1'

export interface Target {
  name: string
  /** http://127.0.0.1:PORT */
  origin: string
  pid: number
  /** The CPUs it may run on, read back from /proc once it runs (taskset list such as "0" or "0-1"). */
  cpus: string
  child: ChildProcess
  stderrTail (): string
  stop (timeoutMs?: number): Promise<number | null>
}

const live = new Set<ChildProcess>()

/**
 * Where children run: 'target' processes (gateway, floor) under `taskset -c <targetCpus>`, 'load' processes
 * (the upstream: lean upstream or simulator) under `taskset -c <loadCpus>`. Unset or disabled: nothing is pinned.
 */
let pinning: Pinning | null = null
export function usePinning (p: Pinning): void {
  pinning = p
}

/** Kills (by pid, SIGKILL) every child still alive; for the runner's exit paths. */
export function killAll (): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  live.clear()
}

let clockTicks = 0
function ticksPerSecond (): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** User + system CPU time of a process (all its threads) in microseconds, from /proc/PID/stat. */
export function cpuMicros (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return ((utime + stime) / ticksPerSecond()) * 1e6
}

/** Resident set size in kB (VmRSS in /proc/PID/status); NaN once the process is gone. */
export function rssKb (pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : NaN
  } catch {
    return NaN
  }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, HOST)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

type Role = 'target' | 'load'

interface SpawnOptions {
  name: string
  role: Role
  args: string[]
  env: Record<string, string>
  ipc: boolean
  /** Where stdout goes: a file path, or /dev/null. */
  stdoutPath?: string
}

function spawnNode (options: SpawnOptions): { child: ChildProcess, stderrTail: () => string } {
  const stdoutFd = openSync(options.stdoutPath ?? '/dev/null', 'a')
  const stdio: StdioOptions = options.ipc ? ['ignore', stdoutFd, 'pipe', 'ipc'] : ['ignore', stdoutFd, 'pipe']
  const cpus = pinning?.enabled ? (options.role === 'target' ? pinning.targetCpus : pinning.loadCpus) : ''
  // taskset sets the affinity and execs node: the pid is node's, every thread of it inherits the CPUs.
  const command = cpus === '' ? process.execPath : 'taskset'
  const args = cpus === '' ? options.args : ['-c', cpus, process.execPath, ...options.args]
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    // A clean environment: nothing of the caller's (a real DASHSCOPE_API_KEY, say) leaks into a target.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...options.env },
    stdio
  })
  closeSync(stdoutFd)
  live.add(child)
  child.once('exit', () => live.delete(child))
  let tail = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (text: string) => { tail = (tail + text).slice(-4000) })
  return { child, stderrTail: () => tail }
}

function stopper (child: ChildProcess) {
  return async function stop (timeoutMs = 10_000): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = sleep(timeoutMs).then(() => 'timeout' as const)
    const outcome = await Promise.race([exited, timer])
    if (outcome === 'timeout') {
      child.kill('SIGKILL')
      await exited
    }
    return child.exitCode
  }
}

async function portFromIpc (child: ChildProcess, name: string, stderrTail: () => string, timeoutMs = 20_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name}: no port reported within ${timeoutMs} ms`)), timeoutMs)
    const onExit = (code: number | null) => fail(new Error(`${name} exited (code ${code}) before listening:\n${stderrTail()}`))
    function fail (error: Error) {
      clearTimeout(timer)
      child.off('exit', onExit)
      reject(error)
    }
    child.once('exit', onExit)
    child.once('message', (message: { port?: number }) => {
      clearTimeout(timer)
      child.off('exit', onExit)
      if (typeof message.port === 'number') resolve(message.port)
      else reject(new Error(`${name}: unexpected message ${JSON.stringify(message)}`))
    })
  })
}

export interface SimulatorSettings {
  tokens: number
  intervalMs: number
  firstChunkDelayMs: number
}

export async function startSimulatorProcess (name: string, settings: SimulatorSettings): Promise<Target> {
  const { child, stderrTail } = spawnNode({
    name,
    role: 'load',
    args: ['bench/simulator-child.ts'],
    env: {
      BENCH_SIM_TOKENS: String(settings.tokens),
      BENCH_SIM_INTERVAL_MS: String(settings.intervalMs),
      BENCH_SIM_FIRST_CHUNK_DELAY_MS: String(settings.firstChunkDelayMs)
    },
    ipc: true
  })
  const port = await portFromIpc(child, name, stderrTail)
  return { name, origin: `http://${HOST}:${port}`, pid: child.pid!, cpus: affinityOf(child.pid!), child, stderrTail, stop: stopper(child) }
}

export interface LeanUpstreamSettings {
  /** Content chunks per streamed answer. */
  chunks: number
  intervalMs: number
}

/** The benchmark's own upstream (bench/lean-upstream.ts), on the load CPUs like the simulator. */
export async function startLeanUpstream (name: string, settings: LeanUpstreamSettings): Promise<Target> {
  const { child, stderrTail } = spawnNode({
    name,
    role: 'load',
    args: ['bench/lean-upstream.ts'],
    env: { BENCH_UPSTREAM_CHUNKS: String(settings.chunks), BENCH_UPSTREAM_INTERVAL_MS: String(settings.intervalMs) },
    ipc: true
  })
  const port = await portFromIpc(child, name, stderrTail)
  return { name, origin: `http://${HOST}:${port}`, pid: child.pid!, cpus: affinityOf(child.pid!), child, stderrTail, stop: stopper(child) }
}

/** The floor; `connections` caps its upstream pool, 0 for no cap (undici opens one per request in flight). */
export async function startBareProxy (upstreamOrigin: string, connections: number, nodeArgs: string[] = []): Promise<Target> {
  const { child, stderrTail } = spawnNode({
    name: 'floor',
    role: 'target',
    args: [...nodeArgs, 'bench/bare-proxy.ts'],
    env: { BARE_PROXY_UPSTREAM: upstreamOrigin, BARE_PROXY_CONNECTIONS: String(connections) },
    ipc: true
  })
  const port = await portFromIpc(child, 'bare proxy', stderrTail)
  return { name: 'floor', origin: `http://${HOST}:${port}`, pid: child.pid!, cpus: affinityOf(child.pid!), child, stderrTail, stop: stopper(child) }
}

export interface GatewayOptions {
  upstreamOrigin: string
  apiKey: string
  /** Extra gateway settings (for example UPSTREAM_CONNECTIONS). */
  env?: Record<string, string>
  /** Node flags before the script, for example --cpu-prof. */
  nodeArgs?: string[]
  logPath?: string
}

/** Compiles the gateway (`npm run build`), so that the benchmark measures the code `npm start` and the image run. */
export function buildGateway (): void {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
}

/** `npm start`'s command line after `node`: its V8 flags and the compiled entry point. */
export function startArgs (): string[] {
  const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${REPO_ROOT}`), 'utf8')) as { scripts: { start: string } }
  const [node, ...args] = pkg.scripts.start.trim().split(/\s+/)
  if (node !== 'node') throw new Error(`package.json's start script does not run node: ${pkg.scripts.start}`)
  return args
}

/** The gateway exactly as users start it: `npm start`'s node command (see buildGateway), configured by environment variables only. */
export async function startGateway (options: GatewayOptions): Promise<Target> {
  const port = await freePort()
  const { child, stderrTail } = spawnNode({
    name: 'gateway',
    role: 'target',
    args: [...(options.nodeArgs ?? []), ...startArgs()],
    env: {
      PORT: String(port),
      HOST,
      LOG_LEVEL: 'info',
      DASHSCOPE_BASE_URL: `${options.upstreamOrigin}/v1`,
      DASHSCOPE_API_KEY: 'sk-bench-upstream',
      GATEWAY_API_KEYS: options.apiKey,
      SHUTDOWN_GRACE_MS: '5000',
      ...options.env
    },
    ipc: false,
    stdoutPath: options.logPath
  })
  const origin = `http://${HOST}:${port}`
  await waitHealthy(origin, child, stderrTail)
  return { name: 'gateway', origin, pid: child.pid!, cpus: affinityOf(child.pid!), child, stderrTail, stop: stopper(child) }
}

async function waitHealthy (origin: string, child: ChildProcess, stderrTail: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (let attempt = 0; attempt < 1000 && performance.now() < deadline; attempt++) {
    if (child.exitCode !== null) throw new Error(`gateway exited with code ${child.exitCode}:\n${stderrTail()}`)
    try {
      const response = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(2000) })
      await response.arrayBuffer()
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`gateway not healthy at ${origin} within ${timeoutMs} ms:\n${stderrTail()}`)
}

/** Soft and hard limits on open files of this process (children inherit them); NaN when unknown. */
export function openFilesLimit (): { soft: number, hard: number } {
  try {
    const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    const num = (v: string | undefined) => (v === 'unlimited' ? Infinity : Number(v))
    return { soft: num(match?.[1]), hard: num(match?.[2]) }
  } catch {
    return { soft: NaN, hard: NaN }
  }
}

/**
 * Checks that every process may open `need` files. Node raises its own soft limit to the hard one when it
 * starts (the runner, the targets and the simulator alike), so the hard limit is what counts; when it is too low
 * this throws with what to do, before any stream is opened.
 */
export function ensureOpenFiles (need: number): string {
  const { soft, hard } = openFilesLimit()
  if (Number.isNaN(soft)) return `open files limit unknown; ${need} needed per process`
  if (soft >= need) return `open files limit ${soft} (${need} needed per process)`
  throw new Error(`${need} open files needed per process, the limit is ${soft} (hard ${hard}): raise it (\`ulimit -n ${need}\`, or the hard limit in limits.conf) or use fewer streams`)
}

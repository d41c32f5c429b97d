// The gateway as a real child process (node src/server.ts), so that a crash, a hang or a leak shows as such.

import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

// Settings the gateway reads; those in the caller's environment are dropped so that only ours apply.
const GATEWAY_ENV = /^(PORT|HOST|LOG_LEVEL|BODY_LIMIT|MODELS|MODELS_CACHE_TTL_MS|TRUST_PROXY|SHUTDOWN_GRACE_MS|REDIS_URL|(GATEWAY|DASHSCOPE|UPSTREAM|RATE_LIMIT|HEARTBEAT|KEY|LOAD_SHED)_\w+)$/

export interface GatewayProcess {
  port: number
  pid: number
  /** Everything the process wrote, stdout and stderr, as lines. */
  lines: string[]
  exit: { code: number | null, signal: NodeJS.Signals | null } | null
  /** Resident set size now and at its peak (VmHWM), in MiB; null where /proc is not available. */
  memory (): { rss: number, peak: number } | null
  stop (): Promise<void>
}

/** A port nobody listens on right now, from the kernel. */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

function memoryOf (pid: number) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rss = /VmRSS:\s+(\d+) kB/.exec(status)
    const peak = /VmHWM:\s+(\d+) kB/.exec(status)
    if (!rss || !peak) return null
    return { rss: Number(rss[1]) / 1024, peak: Number(peak[1]) / 1024 }
  } catch {
    return null
  }
}

async function waitUntilReady (origin: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('the gateway exited during start-up')
    try {
      const response = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(1000) })
      await response.arrayBuffer()
      if (response.status === 200) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`the gateway did not answer ${origin}/health within ${timeoutMs} ms`)
}

export async function startGateway (env: Record<string, string>, attempts = 3): Promise<GatewayProcess> {
  let lastError: unknown
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await freePort()
    const base: Record<string, string> = {}
    for (const [name, value] of Object.entries(process.env)) if (value !== undefined && !GATEWAY_ENV.test(name)) base[name] = value
    const child = spawn(process.execPath, ['src/server.ts'], {
      cwd: ROOT,
      env: { ...base, ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    const lines: string[] = []
    let kept = 0
    const collect = (chunk: Buffer) => {
      // Bounded: a gateway that logs without end must not exhaust the test's memory.
      if (kept > 16 * 1024 * 1024) return
      kept += chunk.length
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    const process_: GatewayProcess = {
      port,
      pid: child.pid ?? -1,
      lines,
      exit: null,
      memory: () => memoryOf(child.pid ?? -1),
      async stop () {
        if (process_.exit) return
        const exited = once(child, 'exit')
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
    }
    child.on('exit', (code, signal) => { process_.exit = { code, signal } })
    try {
      await waitUntilReady(`http://127.0.0.1:${port}`, child, 20_000)
      return process_
    } catch (error) {
      lastError = new Error(`${(error as Error).message}:\n${lines.slice(-20).join('\n')}`)
      await process_.stop()
    }
  }
  throw lastError
}

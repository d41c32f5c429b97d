import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

interface Teardown {
  after (fn: () => unknown): void
}

export interface GatewayProcess {
  child: ChildProcess
  origin: string
  baseURL: string
  /** Everything the process wrote so far, stdout and stderr. */
  output (): string
  /** Resolves once the output matches (logs are written in batches, up to half a second late). */
  waitForOutput (pattern: RegExp, timeoutMs?: number): Promise<string>
  exited: Promise<number | null>
}

export interface SpawnOptions {
  readyPath?: string
  timeoutMs?: number
  /** The script: the sources by default; `dist/src/server.js` is what `npm start` and the image run. */
  entry?: string
  nodeArgs?: string[]
}

/**
 * Runs `node src/server.ts` as users do and kills it when the test ends. On a free loopback port by default; with
 * HOST and PORT in `env`, there, and ready once `readyPath` (default /health/live) answers 200.
 */
export async function spawnGateway (t: Teardown, env: Record<string, string>, options: SpawnOptions = {}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.entry ?? 'src/server.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', chunk => { output += chunk })
  child.stderr!.on('data', chunk => { output += chunk })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const fixed = env.PORT !== undefined && env.PORT !== '0' ? `http://${env.HOST ?? '127.0.0.1'}:${env.PORT}` : undefined
  const ready = async (origin: string) => {
    try {
      const res = await fetch(`${origin}${options.readyPath ?? '/health/live'}`)
      await res.text()
      return res.status === 200
    } catch {
      return false
    }
  }
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  let origin: string | undefined
  while (!origin) {
    // With PORT 0 the port is known only from the log line.
    const candidate = fixed ?? /Server listening at (http:\/\/127(?:\.\d+){3}:\d+)/.exec(output)?.[1]
    if (candidate !== undefined && (fixed === undefined || await ready(candidate))) origin = candidate
    if (child.exitCode !== null) throw new Error(`gateway exited early:\n${output}`)
    if (!origin && Date.now() > deadline) throw new Error(`gateway did not start:\n${output}`)
    if (!origin) await new Promise(resolve => setTimeout(resolve, 20))
  }
  async function waitForOutput (pattern: RegExp, timeoutMs = 5000): Promise<string> {
    const until = Date.now() + timeoutMs
    while (!pattern.test(output)) {
      if (Date.now() > until) throw new Error(`no ${pattern} in the gateway's output:\n${output}`)
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    return output
  }
  return { child, origin, baseURL: `${origin}/v1`, output: () => output, waitForOutput, exited }
}

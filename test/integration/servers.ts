import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createConnection, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDns, type DnsServer } from './dns.ts'

// Real nginx, Prometheus (with promtool) and Redis for the integration tests: Debian's binaries, installed by
// .ci/run. Each server runs on a free loopback port with its own temporary config and data folder, and is
// stopped when the test ends, whatever happened. Everything listens on 127.0.0.1 only.

/** What the helpers need of a tap test. */
export interface Teardown {
  after (fn: () => unknown): void
}

/** What requireBinary needs: tap's plan(0, reason) skips the test, fail() fails it. */
export interface BinaryTest {
  plan (n: number, comment: string): void
  fail (message: string): unknown
}

export type BinaryName = 'nginx' | 'prometheus' | 'promtool' | 'redis-server'

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
export const DEPLOY = join(ROOT, 'deploy')

/** The compose services Prometheus scrapes one by one, as deploy/prometheus spells them. */
export const REPLICAS = ['gateway-1:3000', 'gateway-2:3000'] as const
/** The network alias every replica carries: nginx resolves it at request time to all of them (deploy/nginx.conf). */
export const REPLICA_ALIAS = 'gateway-replicas:3000'
export const GRAFANA = 'grafana:3000'

const PACKAGES: Record<BinaryName, string> = {
  nginx: 'nginx',
  prometheus: 'prometheus',
  promtool: 'prometheus',
  'redis-server': 'redis-server'
}

export const inCI = () => process.env.CI === 'true'

const isExecutable = (file: string) => {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Where a binary is: $NGINX_BIN, $PROMETHEUS_BIN, $PROMTOOL_BIN or $REDIS_SERVER_BIN when set, else the PATH,
 * else the sbin folders Debian uses (nginx lives in /usr/sbin, which a normal user's PATH may lack).
 */
export function findBinary (name: BinaryName): string | undefined {
  const override = process.env[`${name.toUpperCase().replace('-', '_')}_BIN`]
  if (override) return isExecutable(override) ? override : undefined
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin']
  for (const dir of dirs) {
    const file = join(dir, name)
    if (isExecutable(file)) return file
  }
  return undefined
}

export function missingMessage (name: BinaryName): string {
  return `${name} is not installed (apt-get install ${PACKAGES[name]}; .ci/run does it)` +
    (inCI() ? ': integration tests need it under CI=true' : ': skipping; CI=true makes this a failure')
}

/**
 * The binary's path. When it is missing: skips the calling test (call this before any assertion), or fails it
 * when CI=true. Returns undefined then, and the test should return.
 */
export function requireBinary (t: BinaryTest, name: BinaryName): string | undefined {
  const file = findBinary(name)
  if (file !== undefined) return file
  if (inCI()) t.fail(missingMessage(name))
  else t.plan(0, missingMessage(name))
  return undefined
}

/** For tap's `skip` option: a reason when a binary is missing on a laptop, false otherwise (and always under CI). */
export function skipWithout (...names: BinaryName[]): string | false {
  if (inCI()) return false
  const missing = names.filter(name => findBinary(name) === undefined)
  return missing.length === 0 ? false : missing.map(missingMessage).join('; ')
}

function binary (name: BinaryName): string {
  const file = findBinary(name)
  if (file === undefined) throw new Error(missingMessage(name))
  return file
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}

/** A temporary folder, removed when the test ends (after the servers using it stopped: teardowns run in reverse). */
export async function tempDir (t: Teardown, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `qwen-gateway-${prefix}-`))
  // nginx's workers drop to "nobody" when the tests run as root; they must reach the folder.
  await chmod(dir, 0o755)
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export const readDeploy = (file: string) => readFile(join(DEPLOY, file), 'utf8')

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Whether promise settled within ms; the timer never keeps the process alive. */
async function settlesWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>(resolve => { timer = setTimeout(resolve, ms, false) })
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

export interface ToolResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to completion (killed after timeoutMs), with optional stdin. */
export async function runTool (name: BinaryName, args: string[], options: { input?: string, cwd?: string, timeoutMs?: number } = {}): Promise<ToolResult> {
  const child = spawn(binary(name), args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 20_000 })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdin.on('error', () => {})
  child.stdin.end(options.input ?? '')
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', code => resolve(code))
  })
  return { code, stdout, stderr }
}

export interface Managed {
  /** The server's own pid (not the watchdog shell's). */
  pid: number
  /** Everything it wrote on stdout and stderr so far. */
  output (): string
  exited (): boolean
  stop (): Promise<void>
}

// The server runs under a small shell watchdog that holds our stdin: when the test process goes away for any
// reason (even SIGKILL from a runner's timeout), the pipe closes, `cat` returns, and the shell sends the server
// SIGTERM and reaps it. No server outlives its test. The shell exits with the server's status.
const WATCHDOG = [
  '"$@" </dev/null 3>&- &',
  'child=$!',
  'echo "$child" >&3',
  'exec 3>&-',
  'cat >/dev/null 2>&1',
  'kill -TERM "$child" 2>/dev/null',
  'wait "$child"'
].join('\n')

/** True once a pid is gone or a zombie waiting for the watchdog to reap it. */
function processEnded (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    try {
      process.kill(pid, 0)
      return false
    } catch {
      return true
    }
  }
}

/** Starts a long-running server; it is stopped (SIGTERM, then SIGKILL after 10 s) when the test ends. */
export async function launch (t: Teardown, name: BinaryName, args: string[], options: { cwd?: string, logs?: () => string } = {}): Promise<Managed> {
  const child: ChildProcess = spawn('sh', ['-c', WATCHDOG, 'watchdog', binary(name), ...args], {
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe']
  })
  let output = ''
  let shellExited = false
  const exit = new Promise<void>(resolve => child.once('exit', () => {
    shellExited = true
    resolve()
  }))
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stdin!.on('error', () => {})

  let stopped = false
  let pid = 0
  const stop = async () => {
    if (stopped) return
    stopped = true
    child.stdin!.destroy()
    if (!await settlesWithin(exit, 10_000)) {
      for (const target of [pid, child.pid]) {
        try {
          if (target) process.kill(target, 'SIGKILL')
        } catch {}
      }
      await settlesWithin(exit, 2_000)
    }
  }
  t.after(stop)

  const pidPipe = child.stdio[3] as NodeJS.ReadableStream
  let pidText = ''
  pidPipe.setEncoding('utf8')
  pidPipe.on('data', (chunk: string) => { pidText += chunk })
  await settlesWithin(Promise.race([new Promise(resolve => pidPipe.once('end', resolve)), exit]), 5_000)
  pid = Number.parseInt(pidText, 10)
  const allOutput = () => output + (options.logs?.() ?? '')
  if (!(pid > 0)) throw new Error(`${name} did not start: ${allOutput()}`)
  return {
    pid,
    output: allOutput,
    exited: () => shellExited || processEnded(pid),
    stop
  }
}

/** Polls check() every 50 ms until it is true; throws after timeoutMs, or at once when the server exited. */
export async function waitUntil (what: string, server: Managed, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (server.exited()) throw new Error(`${what}: the process exited.\n${server.output()}`)
    try {
      if (await check()) return
    } catch {}
    await sleep(50)
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms.\n${server.output()}`)
}

const acceptsConnections = (port: number) => new Promise<boolean>(resolve => {
  const socket = createConnection({ host: '127.0.0.1', port })
  socket.once('connect', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => resolve(false))
})

// ---------------------------------------------------------------------------------------------------------------
// nginx

export interface NginxRenderOptions {
  /** Folder for the pid file and temp paths. */
  dir: string
  listenPort: number
  /** host:port of the DNS server nginx asks, in place of Docker's embedded one (127.0.0.11). */
  resolver: string
  /**
   * Compose host:port as nginx.conf spells it (gateway-replicas:3000, grafana:3000) to the port the test's servers
   * listen on. The name stays: nginx resolves it at request time, and the test's DNS server answers it.
   */
  ports: Record<string, number>
  /** Replaces every proxy_read_timeout (e.g. '1s' for the heartbeat test). */
  proxyReadTimeout?: string
}

/** Replaces pattern (global) and fails when it matched fewer than min or more than max times: drift shows. */
function substitute (text: string, pattern: RegExp, replacement: string, what: string, min = 1, max = Infinity): string {
  const count = [...text.matchAll(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g'))].length
  if (count < min || count > max) throw new Error(`rendering: expected ${what} ${min === max ? min : `${min} or more`} time(s), found ${count}`)
  return text.replace(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g'), replacement)
}

const withoutComments = (text: string) => text.replace(/^\s*#.*$/gm, '')

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

const COMPOSE_HOST = /\b(gateway-[\w-]+|grafana|prometheus|redis):\d+/g

/**
 * deploy/nginx.conf for loopback, by text substitution: the listen port, the resolver, the ports of the compose
 * names, and what only root may do in a container (user, pid file, log files, Debian's compiled-in temp folders).
 * The rest is the shipped file.
 */
export function renderNginxConf (source: string, options: NginxRenderOptions): string {
  const { dir } = options
  let text = source
  text = text.replace(/^user\s+[^;]+;\n/m, '')
  text = substitute(text, /^pid\s+[^;]+;/m, `pid ${dir}/nginx.pid;`, 'the pid directive', 1, 1)
  // The container's /dev/stdout and /dev/stderr are pipes; a test's are sockets, which nginx cannot open().
  text = substitute(text, /^error_log\s+\S+/m, `error_log ${dir}/error.log`, 'the error_log directive', 1, 1)
  text = substitute(text, /(\baccess_log\s+)\/dev\/stdout/, `$1${dir}/access.log`, 'access_log /dev/stdout', 1, 1)
  text = substitute(text, /^(\s*)listen\s+80;/m, `$1listen 127.0.0.1:${options.listenPort};`, '"listen 80;"', 1, 1)
  text = substitute(text, /^(\s*resolver\s+)127\.0\.0\.11(?=[\s;])/m, `$1${options.resolver}`, 'resolver 127.0.0.11 (Docker\'s DNS)', 1, 1)
  const rendered = new Set<string>()
  for (const [hostPort, port] of Object.entries(options.ports)) {
    const host = hostPort.split(':')[0]
    text = substitute(text, new RegExp(`\\b${escapeRegExp(hostPort)}(?=[\\s;])`), `${host}:${port}`, hostPort)
    rendered.add(`${host}:${port}`)
  }
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map(kind => `  ${kind}_temp_path ${dir}/${kind}_temp;`).join('\n')
  text = substitute(text, /^http \{\n/m, `http {\n${temp}\n`, 'the http block', 1, 1)
  if (options.proxyReadTimeout !== undefined) {
    text = substitute(text, /proxy_read_timeout\s+[^;]+;/, `proxy_read_timeout ${options.proxyReadTimeout};`, 'proxy_read_timeout')
  }
  const leftover = [...withoutComments(text).matchAll(COMPOSE_HOST)].find(match => !rendered.has(match[0]))
  if (leftover) throw new Error(`rendering: ${leftover[0]} still in nginx.conf; give it a test port`)
  return text
}

export interface Nginx {
  origin: string
  port: number
  dir: string
  /** The master process. */
  pid: number
  /** The DNS server nginx asks: change its answers to move traffic. */
  dns: DnsServer
  /** The error log and anything nginx wrote on stderr. */
  output (): string
  /** The access log's lines, parsed (JSON: the shipped log_format). */
  accessLog (): any[]
  stop (): Promise<void>
}

/** `nginx -t` on a rendered config. */
export async function checkNginxConf (config: string, dir: string): Promise<ToolResult> {
  const file = join(dir, 'nginx.conf')
  await writeFile(file, config)
  return runTool('nginx', ['-t', '-p', `${dir}/`, '-c', file, '-e', 'stderr'])
}

/**
 * Splits each compose name's loopback targets (["127.0.0.2:4000", "127.0.0.3:4000"]) into the DNS answer (the
 * addresses) and the port nginx.conf gets. The targets of one name share a port, as compose's replicas do.
 */
function dnsRecords (services: Record<string, string[]>): { records: Record<string, string[]>, ports: Record<string, number> } {
  const records: Record<string, string[]> = {}
  const ports: Record<string, number> = {}
  for (const [hostPort, targets] of Object.entries(services)) {
    const urls = targets.map(target => new URL(`http://${target}`))
    const distinct = new Set(urls.map(url => url.port))
    if (distinct.size !== 1) throw new Error(`${hostPort}: one name resolves to addresses, not ports; give ${targets.join(', ')} one port`)
    records[hostPort.split(':')[0]] = urls.map(url => url.hostname)
    ports[hostPort] = Number(urls[0].port)
  }
  return { records, ports }
}

/**
 * Starts nginx with deploy/nginx.conf rendered for loopback, and a DNS server that answers its names. services maps
 * compose host:port (REPLICA_ALIAS, GRAFANA) to loopback targets sharing one port; Grafana defaults to a port nothing
 * listens on.
 */
export async function startNginx (t: Teardown, options: { services: Record<string, string[]>, proxyReadTimeout?: string, source?: string }): Promise<Nginx> {
  const dir = await tempDir(t, 'nginx')
  const port = await freePort()
  const { records, ports } = dnsRecords({ [GRAFANA]: [`127.0.0.1:${await freePort()}`], ...options.services })
  const dns = await startDns(t, records)
  const config = renderNginxConf(options.source ?? await readDeploy('nginx.conf'), {
    dir, listenPort: port, resolver: dns.address, ports, proxyReadTimeout: options.proxyReadTimeout
  })
  const file = join(dir, 'nginx.conf')
  await writeFile(file, config)
  const readLog = (name: string) => {
    try {
      return readFileSync(join(dir, name), 'utf8')
    } catch {
      return ''
    }
  }
  const server = await launch(t, 'nginx', ['-p', `${dir}/`, '-c', file, '-e', 'stderr', '-g', 'daemon off;'], { logs: () => readLog('error.log') })
  await waitUntil('nginx', server, () => acceptsConnections(port), 10_000)
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    dir,
    pid: server.pid,
    dns,
    output: server.output,
    accessLog: () => readLog('access.log').split('\n').filter(Boolean).map(line => JSON.parse(line)),
    stop: server.stop
  }
}

/** nginx's replica name resolving to the given origins (one or more addresses on one port). */
export function replicaAddresses (...origins: string[]): Record<string, string[]> {
  return { [REPLICA_ALIAS]: origins.map(origin => new URL(origin).host) }
}

/** Prometheus' targets: gateway-1 and gateway-2 to the given origins (one for both, or one each). */
export function replicaTargets (...origins: string[]): Record<string, string> {
  const hosts = origins.map(origin => new URL(origin).host)
  return Object.fromEntries(REPLICAS.map((replica, i) => [replica, hosts[i % hosts.length]]))
}

// ---------------------------------------------------------------------------------------------------------------
// Prometheus

/** deploy/prometheus/prometheus.yml with the replicas' loopback addresses and 1 s scrape and rule intervals. */
export function renderPrometheusConf (source: string, options: { targets: Record<string, string>, intervalSeconds?: number }): string {
  const interval = `${options.intervalSeconds ?? 1}s`
  let text = source
  text = substitute(text, /^(\s*)scrape_interval:\s*\S+/m, `$1scrape_interval: ${interval}`, 'scrape_interval', 1, 1)
  text = substitute(text, /^(\s*)scrape_timeout:\s*\S+/m, `$1scrape_timeout: ${interval}`, 'scrape_timeout', 1, 1)
  text = substitute(text, /^(\s*)evaluation_interval:\s*\S+/m, `$1evaluation_interval: ${interval}`, 'evaluation_interval', 1, 1)
  for (const [host, target] of Object.entries(options.targets)) {
    text = substitute(text, new RegExp(`(^\\s*-\\s*['"]?)${escapeRegExp(host)}(?=['"]?\\s*$)`, 'm'), `$1${target}`, `target ${host}`, 1, 1)
  }
  const leftover = withoutComments(text).match(/\b(gateway-\d+):\d+/)
  if (leftover) throw new Error(`rendering: ${leftover[0]} still in prometheus.yml; give it a loopback target`)
  return text
}

export interface Prometheus {
  url: string
  dir: string
  output (): string
  /** GET /api/v1/<path> and its JSON. */
  api (path: string): Promise<any>
  /** An instant query's result vector. */
  query (expr: string): Promise<Array<{ metric: Record<string, string>, value: [number, string] }>>
  stop (): Promise<void>
}

/** Starts Prometheus with a rendered config and the rule files beside it (names relative to the config). */
export async function startPrometheus (t: Teardown, options: { config: string, files?: Record<string, string> }): Promise<Prometheus> {
  const dir = await tempDir(t, 'prometheus')
  const file = join(dir, 'prometheus.yml')
  await writeFile(file, options.config)
  for (const [name, content] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), content)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const server = await launch(t, 'prometheus', [
    `--config.file=${file}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'
  ], { cwd: dir })
  await waitUntil('prometheus', server, async () => (await fetch(`${url}/-/ready`)).status === 200, 20_000)
  const api = async (path: string): Promise<any> => {
    const response = await fetch(`${url}/api/v1/${path}`)
    return response.json()
  }
  return {
    url,
    dir,
    output: server.output,
    api,
    async query (expr: string) {
      const body = await api(`query?query=${encodeURIComponent(expr)}`)
      if (body.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(body)}`)
      return body.data.result
    },
    stop: server.stop
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

export interface Redis {
  url: string
  port: number
  pid: number
  /** Its working folder, removed when the test ends. */
  dir: string
  stop (): Promise<void>
}

/** Whether a Redis answers PING on 127.0.0.1:port. */
export const answersPing = (port: number) => new Promise<boolean>(resolve => {
  const socket = createConnection({ host: '127.0.0.1', port })
  let reply = ''
  const done = (ok: boolean) => { socket.destroy(); resolve(ok) }
  socket.setTimeout(1_000, () => done(false))
  socket.once('connect', () => socket.write('PING\r\n'))
  socket.on('data', chunk => {
    reply += chunk.toString()
    if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
  })
  socket.once('error', () => done(false))
})

/**
 * A throwaway redis-server on a free loopback port, no persistence, stopped when the test ends.
 * Throws when redis-server is missing: call requireBinary(t, 'redis-server') (or skipWithout) first to skip.
 */
export async function startRedis (t: Teardown): Promise<Redis> {
  const dir = await tempDir(t, 'redis')
  const port = await freePort()
  const server = await launch(t, 'redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'yes',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--loglevel', 'warning'
  ], { cwd: dir })
  await waitUntil('redis-server', server, () => answersPing(port), 10_000)
  return { url: `redis://127.0.0.1:${port}`, port, pid: server.pid, dir, stop: server.stop }
}

/** A port free on every address, or undefined when this machine cannot listen on them (only 127.0.0.1 on loopback). */
export async function portFreeOn (addresses: string[]): Promise<number | undefined> {
  const bindable = (host: string, port: number) => new Promise<boolean>(resolve => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const results = await Promise.all(addresses.map(host => bindable(host, port)))
    if (results.every(Boolean)) return port
  }
  return undefined
}

import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { postJson, user } from '../helper.ts'
import { spawnGateway } from '../process-helper.ts'
import { startSimulator } from '../simulator/index.ts'

/** Runs `node src/server.ts` to its end: what it wrote to each stream, and its exit code. */
async function runGateway (env: Record<string, string>, options: { uid?: number, gid?: number } = {}) {
  // Another user cannot write tap's coverage records: its hooks (NODE_OPTIONS, which tap puts back into every spawn) go.
  const [command, args] = options.uid === undefined
    ? [process.execPath, ['src/server.ts']]
    : ['/bin/sh', ['-c', 'unset NODE_OPTIONS; exec "$0" src/server.ts', process.execPath]]
  const child = spawn(command, args, {
    env: { ...process.env, HOST: '127.0.0.1', GATEWAY_API_KEYS: '', GATEWAY_CONFIG: '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += chunk })
  child.stderr.on('data', chunk => { stderr += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

t.test('a port already in use: one line naming it, exit code 1, no stack', async t => {
  const holder = createServer()
  await new Promise<void>(resolve => holder.listen(0, '127.0.0.1', resolve))
  t.after(() => holder.close())
  const { port } = holder.address() as AddressInfo
  const { code, stdout, stderr } = await runGateway({ PORT: String(port) })
  t.equal(code, 1)
  t.equal(stderr, `Port ${port} is in use on 127.0.0.1; set PORT to a free port (or stop the other process)\n`, 'one line on stderr')
  t.notMatch(stdout + stderr, /\n\s+at |"stack"|EADDRINUSE|fatal error/, 'no stack trace, no error log line')
})

t.test('a privileged port: one line, exit code 1', async t => {
  // As root any port binds, so the gateway runs as nobody; where low ports are open to everyone, there is no refusal to see.
  const { code, stdout, stderr } = await runGateway({ PORT: '1' }, process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {})
  if (code !== 1 && /Server listening/.test(stdout)) return t.pass('nothing to see: this machine lets unprivileged processes listen on port 1')
  t.equal(code, 1)
  t.equal(stderr, 'Port 1 on 127.0.0.1 needs privileges this process does not have (ports below 1024 usually do); set PORT to 1024 or above\n')
  t.notMatch(stdout + stderr, /\n\s+at |"stack"/)
})

t.test('a HOST that is not this machine\'s: one line, exit code 1', async t => {
  const { code, stderr } = await runGateway({ HOST: '192.0.2.1', PORT: '0', GATEWAY_ALLOW_OPEN: 'true' })
  t.equal(code, 1)
  t.equal(stderr, 'HOST=192.0.2.1 is not an address of this machine; set HOST to one of its addresses\n')
})

t.test('DASHSCOPE_BASE_URL with an endpoint at its end: a warning at start, and chat reaches the upstream', async t => {
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: `${sim.url}/chat/completions/`, LOG_LEVEL: 'info' })
  const res = await postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') })
  t.equal(res.status, 200, 'not a 404 for /v1/chat/completions/chat/completions')
  t.match(await res.json(), { choices: [{ message: { role: 'assistant' } }] })
  const output = await gateway.waitForOutput(/ends with/)
  const warning = output.split('\n').find(line => line.includes('ends with'))!
  t.match(JSON.parse(warning), { level: 40, msg: `DASHSCOPE_BASE_URL ends with /chat/completions, an endpoint: using ${sim.url}` })
})

import t from 'tap'
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { Redis as RedisClient } from 'ioredis'
import { requireBinary, skipWithout, startRedis } from './servers.ts'

// The helpers the integration tests stand on: binaries that are missing skip on a laptop and fail under CI, and
// servers never outlive their test.

const refused = (port: number) => new Promise<boolean>(resolve => {
  const socket = createConnection({ host: '127.0.0.1', port })
  socket.once('connect', () => { socket.destroy(); resolve(false) })
  socket.once('error', () => resolve(true))
})

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Runs fn with some environment variables changed, restoring them afterwards. */
function withEnv (changes: Record<string, string | undefined>, fn: () => void) {
  const saved = Object.fromEntries(Object.keys(changes).map(name => [name, process.env[name]]))
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
  apply(changes)
  try {
    fn()
  } finally {
    apply(saved)
  }
}

t.test('a missing binary skips the test on a laptop and fails it under CI=true', async t => {
  const calls: string[] = []
  const fake = { plan: (n: number, comment: string) => calls.push(`plan ${n}: ${comment}`), fail: (message: string) => calls.push(`fail: ${message}`) }
  withEnv({ PROMTOOL_BIN: '/nonexistent/promtool', CI: undefined }, () => {
    t.equal(requireBinary(fake, 'promtool'), undefined)
    t.match(skipWithout('promtool'), /promtool is not installed \(apt-get install prometheus/)
  })
  withEnv({ PROMTOOL_BIN: '/nonexistent/promtool', CI: 'true' }, () => {
    t.equal(requireBinary(fake, 'promtool'), undefined)
    t.equal(skipWithout('promtool'), false, 'under CI the test runs, and requireBinary fails it')
  })
  t.match(calls[0], /^plan 0: promtool is not installed .*skipping/)
  t.match(calls[1], /^fail: promtool is not installed .*CI=true/)
})

t.test('startRedis runs a private Redis on loopback and stops it', async t => {
  if (requireBinary(t, 'redis-server') === undefined) return
  const redis = await startRedis(t)
  t.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/)
  const client = new RedisClient(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  t.after(() => client.disconnect())
  await client.connect()
  t.equal(await client.ping(), 'PONG')
  await client.set('qwen-gateway:test', 'ok', 'PX', 5_000)
  t.equal(await client.get('qwen-gateway:test'), 'ok')
  t.equal(await client.config('GET', 'save').then(pair => (pair as string[])[1]), '', 'no persistence')
  client.disconnect()
  await redis.stop()
  t.ok(await refused(redis.port), 'nothing listens after stop()')
  t.notOk(alive(redis.pid), 'the process is gone')
})

t.test('a server never outlives its test process, even one killed with SIGKILL', async t => {
  if (requireBinary(t, 'redis-server') === undefined) return
  // A child Node process starts Redis through the helper, reports its pid and port, then kills itself.
  const script = `
    import { startRedis } from ${JSON.stringify(new URL('./servers.ts', import.meta.url).href)}
    const redis = await startRedis({ after () {} })
    process.stdout.write(JSON.stringify({ pid: redis.pid, port: redis.port, dir: redis.dir }) + '\\n')
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 100)
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const signal = await new Promise(resolve => child.once('exit', (_, signal) => resolve(signal)))
  t.equal(signal, 'SIGKILL', 'the test process died without any teardown')
  const { pid, port, dir } = JSON.parse(output)
  t.ok(pid > 0)
  // The dead process could not remove its folder; this test does.
  t.after(() => rm(dir, { recursive: true, force: true }))
  const deadline = performance.now() + 5_000
  while (alive(pid) && performance.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  t.notOk(alive(pid), `redis-server ${pid} was stopped by its watchdog`)
  t.ok(await refused(port), 'and its port is free')
})

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { ConfigError, loadConfig } from '../../src/config.ts'

t.test('defaults', async t => {
  const config = loadConfig({})
  t.equal(config.PORT, 3000)
  t.equal(config.HOST, '0.0.0.0')
  t.equal(config.LOG_LEVEL, 'info')
  t.equal(config.DASHSCOPE_BASE_URL, 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1')
  t.same(config.DASHSCOPE_API_KEY, [])
  t.same(config.GATEWAY_API_KEYS, [])
  t.equal(config.BODY_LIMIT, 10 * 1024 * 1024)
  t.ok(config.MODELS.includes('qwen-plus'))
})

t.test('lists are split on commas, blanks ignored; empty variables take defaults', async t => {
  const config = loadConfig({ DASHSCOPE_API_KEY: 'sk-a, sk-b,,', GATEWAY_API_KEYS: ' c1 ', PORT: '', DASHSCOPE_BASE_URL: 'http://127.0.0.1:8000/v1/', TRUST_PROXY: 'true' })
  t.same(config.DASHSCOPE_API_KEY, ['sk-a', 'sk-b'])
  t.same(config.GATEWAY_API_KEYS, ['c1'])
  t.equal(config.PORT, 3000)
  t.equal(config.DASHSCOPE_BASE_URL, 'http://127.0.0.1:8000/v1')
  t.equal(config.TRUST_PROXY, true)
})

t.test('an invalid value names the variable and what was expected', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /^Invalid configuration: PORT="abc" is not valid; expected an integer port/],
    [{ PORT: '70000' }, /PORT="70000"/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud" .* one of fatal, error/],
    [{ DASHSCOPE_BASE_URL: 'ftp://x' }, /DASHSCOPE_BASE_URL="ftp:\/\/x" .* http\(s\) base URL/],
    [{ BODY_LIMIT: '10MB' }, /BODY_LIMIT="10MB" .* size in bytes/],
    [{ TRUST_PROXY: 'maybe' }, /TRUST_PROXY="maybe" .* true or false/],
    [{ UPSTREAM_BODY_TIMEOUT_MS: '0' }, /UPSTREAM_BODY_TIMEOUT_MS/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), ConfigError)
    try {
      loadConfig(env)
    } catch (error) {
      t.match((error as Error).message, message)
      t.notMatch((error as Error).message, /\n/, 'one line')
    }
  }
})

t.test('the server refuses to start on bad configuration: one line, exit code 1', async t => {
  const result = spawnSync(process.execPath, ['src/server.ts'], { env: { ...process.env, PORT: 'abc', DASHSCOPE_API_KEY: 'sk-secret-123' }, encoding: 'utf8', timeout: 10_000 })
  t.equal(result.status, 1)
  t.equal(result.stderr.trim(), 'Invalid configuration: PORT="abc" is not valid; expected an integer port from 0 to 65535')
  t.notMatch(result.stderr + result.stdout, /sk-secret-123/)
})

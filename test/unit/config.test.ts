import t from 'tap'
import { spawnSync } from 'node:child_process'
import { ConfigError, loadConfig } from '../../src/config.ts'

t.test('defaults', async t => {
  const config = loadConfig({})
  t.equal(config.PORT, 3000)
  t.equal(config.HOST, '127.0.0.1', 'without client keys, loopback only')
  t.equal(config.LOG_LEVEL, 'info')
  t.equal(config.DASHSCOPE_BASE_URL, 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1')
  t.same(config.DASHSCOPE_API_KEY, [])
  t.same(config.GATEWAY_API_KEYS, [])
  t.equal(config.BODY_LIMIT, 32 * 1024 * 1024)
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

t.test('secure defaults: an open gateway stays on loopback unless GATEWAY_ALLOW_OPEN=true', async t => {
  t.equal(loadConfig({ GATEWAY_API_KEYS: 'client-key' }).HOST, '0.0.0.0', 'with client keys, every interface')
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) t.equal(loadConfig({ HOST: host }).HOST, host, `${host} is loopback`)
  for (const host of ['0.0.0.0', '::', '192.168.1.10', 'gateway.example.com']) {
    t.throws(() => loadConfig({ HOST: host }), {
      name: 'ConfigError',
      message: `Invalid configuration: HOST="${host}" would open the gateway to the network without client keys; set GATEWAY_API_KEYS, or GATEWAY_ALLOW_OPEN=true to run an open gateway on purpose`
    })
    t.equal(loadConfig({ HOST: host, GATEWAY_API_KEYS: 'client-key' }).HOST, host, `${host} with client keys`)
    t.equal(loadConfig({ HOST: host, GATEWAY_ALLOW_OPEN: 'true' }).HOST, host, `${host} opened on purpose`)
  }
})

t.test('the server refuses to start on bad configuration: one line, exit code 1', async t => {
  const result = spawnSync(process.execPath, ['src/server.ts'], { env: { ...process.env, PORT: 'abc', DASHSCOPE_API_KEY: 'sk-secret-123' }, encoding: 'utf8', timeout: 10_000 })
  t.equal(result.status, 1)
  t.equal(result.stderr.trim(), 'Invalid configuration: PORT="abc" is not valid; expected an integer port from 0 to 65535')
  t.notMatch(result.stderr + result.stdout, /sk-secret-123/)

  const open = spawnSync(process.execPath, ['src/server.ts'], { env: { ...process.env, HOST: '0.0.0.0', PORT: '0', GATEWAY_API_KEYS: '', GATEWAY_CONFIG: '', GATEWAY_ALLOW_OPEN: '' }, encoding: 'utf8', timeout: 10_000 })
  t.equal(open.status, 1, 'HOST=0.0.0.0 without client keys does not start')
  t.match(open.stderr.trim(), /^Invalid configuration: HOST="0\.0\.0\.0" .*GATEWAY_API_KEYS.*GATEWAY_ALLOW_OPEN=true[^\n]*$/)
})

t.test('the config file: YAML or JSON, checked with messages that name the problem', async t => {
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-config-test-'))
  const write = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }
  const ok = write('ok.yaml', `
upstreams:
  - name: intl
    base_url: https://dashscope-intl.aliyuncs.com/compatible-mode/v1/
    api_keys_env: INTL_KEYS
  - name: vllm
    base_url: http://127.0.0.1:8000/v1
    native_tools: false
models:
  - id: qwen3-max
    aliases: [gpt-4o, gpt-4.1]
    targets: [{ upstream: intl }, { upstream: vllm, model: Qwen/Qwen3-8B }]
clients:
  - { name: roo, key: roo-secret-key, requests_per_minute: 60 }
`)
  const config = loadConfig({ GATEWAY_CONFIG: ok, INTL_KEYS: 'sk-1, sk-2', GATEWAY_API_KEYS: 'env-key', RATE_LIMIT_TPM: '1000' })
  const { topology } = config
  t.same(topology.upstreams, [
    { name: 'intl', baseUrl: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1', keys: ['sk-1', 'sk-2'], nativeTools: true },
    { name: 'vllm', baseUrl: 'http://127.0.0.1:8000/v1', keys: [], nativeTools: false }
  ])
  t.same(topology.routes.get('gpt-4o'), [{ upstream: 'intl', model: 'qwen3-max' }, { upstream: 'vllm', model: 'Qwen/Qwen3-8B' }])
  t.same(topology.declaredModels, ['qwen3-max', 'gpt-4o', 'gpt-4.1'])
  t.same(topology.clients, [
    { name: 'key-1', key: 'env-key', requestsPerMinute: 0, tokensPerMinute: 1000 },
    { name: 'roo', key: 'roo-secret-key', requestsPerMinute: 60, tokensPerMinute: 1000 }
  ])

  const cases: Array<[string, string, RegExp]> = [
    ['broken.yaml', 'upstreams: [', /is not valid YAML/],
    ['broken.json', '{"upstreams": ', /is not valid JSON/],
    ['unknown-field.yaml', 'upstream: []', /unknown-field\.yaml: \/: unknown property upstream \(did you mean upstreams\?\)$/],
    ['bad-url.yaml', 'upstreams: [{ name: a, base_url: "ftp://x" }]', /\/upstreams\/0\/base_url/],
    ['bad-target.yaml', 'upstreams: [{ name: a, base_url: "http://x/v1" }]\nmodels: [{ id: m, targets: [{ upstream: b }] }]', /model "m" names upstream "b"/],
    ['twice.yaml', 'models: [{ id: m, targets: [{ upstream: dashscope }] }, { id: n, aliases: [m], targets: [{ upstream: dashscope }] }]', /"m" is declared twice/],
    ['no-key.yaml', 'clients: [{ name: c, key_env: UNSET_VARIABLE_X }]', /client "c" needs "key"/]
  ]
  for (const [name, text, message] of cases) {
    t.throws(() => loadConfig({ GATEWAY_CONFIG: write(name, text) }), { name: 'ConfigError', message }, name)
  }
  t.throws(() => loadConfig({ GATEWAY_CONFIG: join(dir, 'missing.yaml') }), { message: /cannot read .*missing\.yaml: ENOENT/ })
})

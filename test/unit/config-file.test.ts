import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { loadConfig } from '../../src/config.ts'
import { editDistance } from '../../src/topology.ts'

const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-config-file-test-'))
const write = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const failure = (env: Record<string, string>): string => {
  try {
    loadConfig(env)
  } catch (error) {
    t.equal((error as Error).name, 'ConfigError')
    return (error as Error).message
  }
  throw new Error('loadConfig accepted it')
}

t.test('a base URL that ends with an endpoint is trimmed to the base, with one warning line', async t => {
  const endpoints = ['/chat/completions', '/completions', '/embeddings', '/models', '/responses', '/messages']
  for (const endpoint of endpoints) {
    for (const slash of ['', '/', '//']) {
      const config = loadConfig({ DASHSCOPE_BASE_URL: `https://dashscope-intl.aliyuncs.com/compatible-mode/v1${endpoint}${slash}` })
      t.equal(config.DASHSCOPE_BASE_URL, 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1', `${endpoint}${slash}`)
      t.equal(config.topology.upstreams[0].baseUrl, 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1', 'the upstream the gateway calls')
      t.same(config.warnings, [`DASHSCOPE_BASE_URL ends with ${endpoint}, an endpoint: using https://dashscope-intl.aliyuncs.com/compatible-mode/v1`])
    }
  }
  const plain = loadConfig({ DASHSCOPE_BASE_URL: 'http://127.0.0.1:8000/v1/' })
  t.equal(plain.DASHSCOPE_BASE_URL, 'http://127.0.0.1:8000/v1')
  t.same(plain.warnings, [], 'a base URL (a trailing slash is fine) warns of nothing')
  t.same(loadConfig({}).warnings, [])
  // Only a whole path segment is an endpoint.
  t.equal(loadConfig({ DASHSCOPE_BASE_URL: 'http://127.0.0.1:8000/mymodels' }).DASHSCOPE_BASE_URL, 'http://127.0.0.1:8000/mymodels')

  const file = write('endpoint.yaml', `
upstreams:
  - name: intl
    base_url: https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions/
  - name: vllm
    base_url: http://127.0.0.1:8000/v1/embeddings
  - name: ollama
    base_url: http://127.0.0.1:11434/v1/
`)
  const config = loadConfig({ GATEWAY_CONFIG: file })
  t.same(config.topology.upstreams.map(upstream => upstream.baseUrl), [
    'https://dashscope-intl.aliyuncs.com/compatible-mode/v1',
    'http://127.0.0.1:8000/v1',
    'http://127.0.0.1:11434/v1'
  ])
  t.same(config.warnings, [
    'GATEWAY_CONFIG: upstream "intl": base_url ends with /chat/completions, an endpoint: using https://dashscope-intl.aliyuncs.com/compatible-mode/v1',
    'GATEWAY_CONFIG: upstream "vllm": base_url ends with /embeddings, an endpoint: using http://127.0.0.1:8000/v1'
  ])
})

t.test('a YAML error keeps the lines that show where it is', async t => {
  const path = write('broken.yaml', 'upstreams: [\n')
  t.equal(failure({ GATEWAY_CONFIG: path }), [
    `Invalid configuration: GATEWAY_CONFIG: ${path} is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1:`,
    '    upstreams: [',
    '',
    '    ^'
  ].join('\n'), 'the code frame of the yaml package, indented under the first line')

  const indent = write('indent.yaml', 'upstreams:\n  - name: intl\n     base_url: http://127.0.0.1:8000/v1\n')
  t.equal(failure({ GATEWAY_CONFIG: indent }), [
    `Invalid configuration: GATEWAY_CONFIG: ${indent} is not valid YAML: Nested mappings are not allowed in compact mappings at line 2, column 11:`,
    '      - name: intl',
    '              ^'
  ].join('\n'))

  const twice = write('twice.yaml', 'models: []\nmodels: []\n')
  t.equal(failure({ GATEWAY_CONFIG: twice }), [
    `Invalid configuration: GATEWAY_CONFIG: ${twice} is not valid YAML: Map keys must be unique at line 2, column 1:`,
    '    models: []',
    '    models: []',
    '    ^'
  ].join('\n'))

  const json = write('broken.json', '{\n  "upstreams": [\n    { "name": "intl", }\n  ]\n}\n')
  t.equal(failure({ GATEWAY_CONFIG: json }), [
    `Invalid configuration: GATEWAY_CONFIG: ${json} is not valid JSON: Expected double-quoted property name in JSON at line 3, column 23:`,
    '        { "name": "intl", }',
    '                          ^'
  ].join('\n'), 'JSON gets the same frame')
})

t.test('a misspelt property is named, with the nearest known one', async t => {
  const cases: Array<[string, string]> = [
    ['upstreams:\n  - name: intl\n    base_ur: http://127.0.0.1:8000/v1\n', '/upstreams/0: unknown property base_ur (did you mean base_url?)'],
    ['upstream: []\n', '/: unknown property upstream (did you mean upstreams?)'],
    ['models:\n  - id: m\n    targets: [{ upstream: dashscope, modle: x }]\n', '/models/0/targets/0: unknown property modle (did you mean model?)'],
    ['clients:\n  - { name: c, key: client-key-1, request_per_minute: 5 }\n', '/clients/0: unknown property request_per_minute (did you mean requests_per_minute?)'],
    ['clients:\n  - { name: c, key: client-key-1, Key_Env: X }\n', '/clients/0: unknown property Key_Env (did you mean key_env?)'],
    ['models:\n  - { id: m, colour: blue, targets: [{ upstream: dashscope }] }\n', '/models/0: unknown property colour (known properties: id, aliases, targets, think_tags)']
  ]
  for (const [text, message] of cases) {
    const path = write('typo.yaml', text)
    t.equal(failure({ GATEWAY_CONFIG: path }), `Invalid configuration: GATEWAY_CONFIG: ${path}: ${message}`, message)
  }
  t.equal(editDistance('base_ur', 'base_url'), 1)
  t.equal(editDistance('nmae', 'name'), 1, 'two letters swapped are one edit')
  t.equal(editDistance('', 'abc'), 3)
})

t.test('an empty file is refused, naming it', async t => {
  for (const [name, text] of [['empty.yaml', ''], ['comments.yaml', '# upstreams:\n#   - name: intl\n\n'], ['blank.yml', '  \n']]) {
    const path = write(name, text)
    t.equal(failure({ GATEWAY_CONFIG: path }), `Invalid configuration: GATEWAY_CONFIG: ${path} is empty (or only comments): it needs upstreams, models or clients; unset GATEWAY_CONFIG to use the environment alone`, name)
  }
  const json = write('empty.json', '\n')
  t.equal(failure({ GATEWAY_CONFIG: json }), `Invalid configuration: GATEWAY_CONFIG: ${json} is empty: it needs upstreams, models or clients; unset GATEWAY_CONFIG to use the environment alone`)
  t.same(loadConfig({ GATEWAY_CONFIG: write('braces.json', '{}') }).topology.upstreams.map(upstream => upstream.name), ['dashscope'], 'an explicit {} is a choice, not a mistake')
})

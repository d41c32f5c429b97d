import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { targetsFor } from '../../src/topology.ts'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const modelFor = (env: Record<string, string>, model: string) => targetsFor(loadConfig(env).topology, model).map(target => target.model)

t.test('out of the box, any claude-* name reaches a coder model, and other names go as they are', async t => {
  t.same(modelFor({}, 'claude-opus-5-5'), ['qwen3-coder-plus'])
  t.same(modelFor({}, 'claude-haiku-4-5-20251001'), ['qwen3-coder-plus'])
  t.same(modelFor({}, 'qwen-plus'), ['qwen-plus'])
  t.same(modelFor({}, 'claude'), ['claude'], 'the prefix is claude-, not claude')
})

t.test('MODEL_ALIASES: exact and prefix aliases, the longest prefix winning', async t => {
  const env = { MODEL_ALIASES: 'claude-*=qwen3-coder-plus,claude-haiku-*=qwen3-coder-flash,gpt-*=qwen-plus,o3=qwen3-max' }
  t.same(modelFor(env, 'claude-sonnet-4-5'), ['qwen3-coder-plus'])
  t.same(modelFor(env, 'claude-haiku-4-5'), ['qwen3-coder-flash'])
  t.same(modelFor(env, 'gpt-5.1-codex'), ['qwen-plus'])
  t.same(modelFor(env, 'o3'), ['qwen3-max'])
  t.same(modelFor(env, 'o3-mini'), ['o3-mini'], 'an alias without * is exact')
})

t.test('an empty MODEL_ALIASES switches the default off', async t => {
  t.same(modelFor({ MODEL_ALIASES: ' ' }, 'claude-opus-5-5'), ['qwen3-coder-plus'], 'blank counts as unset')
  t.same(modelFor({ MODEL_ALIASES: 'x=y' }, 'claude-opus-5-5'), ['claude-opus-5-5'])
})

t.test('a malformed pair is refused at start in one line', async t => {
  t.throws(() => loadConfig({ MODEL_ALIASES: 'claude-*' }), /MODEL_ALIASES: "claude-\*" is not alias=model/)
  t.throws(() => loadConfig({ MODEL_ALIASES: 'a=b=c' }), /MODEL_ALIASES/)
})

t.test('an alias may name a model the config file declares, and takes its targets and fallbacks', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'aliases-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `
upstreams:
  - { name: cloud, base_url: https://dashscope.example/compatible-mode/v1, api_keys: [sk-a] }
  - { name: local, base_url: http://127.0.0.1:8000/v1 }
models:
  - id: coder
    aliases: ["anthropic-*"]
    targets: [{ upstream: cloud, model: qwen3-coder-plus }, { upstream: local, model: Qwen3-Coder-30B }]
`)
  const topology = loadConfig({ GATEWAY_CONFIG: file, MODEL_ALIASES: 'claude-*=coder,anthropic-*=other' }).topology
  t.same(targetsFor(topology, 'claude-opus-5-5'), [{ upstream: 'cloud', model: 'qwen3-coder-plus' }, { upstream: 'local', model: 'Qwen3-Coder-30B' }])
  t.same(targetsFor(topology, 'anthropic-x').map(target => target.model), ['qwen3-coder-plus', 'Qwen3-Coder-30B'], "the file's own prefix alias wins over the variable")
})

import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { createModelLimits } from '../../src/model-limits.ts'

t.test('known Qwen models have their output ceilings; unknown models have none', async t => {
  const limits = createModelLimits([])
  t.equal(limits.maxOutputTokens('qwen3-coder-plus'), 65_536)
  t.equal(limits.maxOutputTokens('qwen-plus-2025-09-11'), 32_768)
  t.equal(limits.maxOutputTokens('qwen-max'), 8192)
  t.equal(limits.maxOutputTokens('Qwen3-Coder-30B-A3B-Instruct'), null, 'a local model nobody describes')
})

t.test('MODEL_MAX_OUTPUT_TOKENS overrides, exact ids before prefixes', async t => {
  const limits = createModelLimits(['qwen3-coder-*=1000', 'qwen3-coder-flash=500', 'my-local=2048'])
  t.equal(limits.maxOutputTokens('qwen3-coder-plus'), 1000)
  t.equal(limits.maxOutputTokens('qwen3-coder-flash'), 500)
  t.equal(limits.maxOutputTokens('my-local'), 2048)
  t.equal(limits.maxOutputTokens('my-local-2'), null)
})

t.test('coder models and qwen-max take no thinking switch', async t => {
  const limits = createModelLimits([])
  t.notOk(limits.thinks('qwen3-coder-plus'))
  t.notOk(limits.thinks('qwen-max'))
  t.ok(limits.thinks('qwen3-max'))
  t.ok(limits.thinks('qwen-plus'))
})

t.test('a malformed MODEL_MAX_OUTPUT_TOKENS is refused at start', async t => {
  t.throws(() => loadConfig({ MODEL_MAX_OUTPUT_TOKENS: 'qwen-plus=lots' }), /Invalid configuration: MODEL_MAX_OUTPUT_TOKENS: "qwen-plus=lots" is not model=tokens/)
  t.throws(() => loadConfig({ MODEL_MAX_OUTPUT_TOKENS: 'qwen-plus=0' }), /MODEL_MAX_OUTPUT_TOKENS/)
})

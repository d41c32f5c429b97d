import t from 'tap'
import { postJson, startStack } from '../helper.ts'

// Every API family travels the one pipeline, so each is accounted for in the same metrics, told apart by `api`.

t.test('each API family is counted under its own api label, with its tokens', async t => {
  const { baseURL, origin } = await startStack(t)
  const user = [{ role: 'user', content: 'hi' }]
  const calls: Array<[string, object]> = [
    ['/chat/completions', { model: 'qwen-plus', messages: user }],
    ['/completions', { model: 'qwen-plus', prompt: 'hi' }],
    ['/responses', { model: 'qwen-plus', input: 'hi' }],
    ['/responses', { model: 'qwen-plus', input: 'hi', stream: true }],
    ['/messages', { model: 'claude-sonnet-4-5', max_tokens: 64, messages: user }],
    ['/messages', { model: 'claude-sonnet-4-5', max_tokens: 64, messages: user, stream: true }],
    ['/embeddings', { model: 'text-embedding-v4', input: ['a', 'b'] }]
  ]
  for (const [path, body] of calls) {
    const res = await postJson(`${baseURL}${path}`, body)
    t.equal(res.status, 200, path)
    await res.text()
  }
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  const count = (api: string, model: string) => {
    const line = metrics.split('\n').find(l => l.startsWith('qwen_gateway_upstream_request_duration_seconds_count{') &&
      l.includes(`api="${api}"`) && l.includes(`model="${model}"`) && l.includes('status_class="2xx"'))
    return line === undefined ? 0 : Number(line.split(' ').at(-1))
  }
  t.equal(count('chat', 'qwen-plus'), 1)
  t.equal(count('completions', 'qwen-plus'), 1)
  t.equal(count('responses', 'qwen-plus'), 2, 'JSON and stream')
  t.equal(count('messages', 'claude-sonnet-4-5'), 2, 'under the name the client asked for, once the upstream served it')
  t.equal(count('embeddings', 'text-embedding-v4') + count('embeddings', 'other'), 1)
  t.match(metrics, /qwen_gateway_tokens_total\{model="qwen-plus",client="anonymous",type="prompt"\} \d+/)
})

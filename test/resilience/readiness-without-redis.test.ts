import t from 'tap'
import { build } from '../helper.ts'

// Redis is shared by every replica: were a replica unready without it, all would be at once, and on Kubernetes
// the Service would have no endpoint left. The replica keeps serving (limits fail open), so it stays ready and says
// what is missing. Runs without a redis-server: nothing listens on port 9.

t.test('/health/ready stays 200 while Redis does not answer, and says so in its checks', async t => {
  const app = await build(t, { REDIS_URL: 'redis://127.0.0.1:9', DASHSCOPE_BASE_URL: 'http://127.0.0.1:9/v1', DASHSCOPE_API_KEY: 'sk-x' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready', checks: { upstream_keys: true, shared_state: false } })
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.match(health.json(), { shared_state: { store: 'redis', available: false } }, '/health says the same')
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /^qwen_gateway_shared_state_up\{store="redis"\} 0$/m, 'and /metrics, for the alert')
})

t.test('without REDIS_URL the shared state is the process\'s own memory, always up', async t => {
  const app = await build(t, {})
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /^qwen_gateway_shared_state_up\{store="memory"\} 1$/m)
})

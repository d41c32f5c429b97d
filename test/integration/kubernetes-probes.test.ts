import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.ts'
import { build } from '../helper.ts'
import { containerEnv, containerPort, find, gatewayContainer, materializeMounts } from './kubernetes-objects.ts'
import { OVERLAYS, render, requireKubectl } from './kubernetes-render.ts'
import { requireBinary, startRedis } from './servers.ts'

// The probes and the Ingress' paths asked of a real gateway, configured as each overlay's container would be: its
// environment, the Secret's keys (secret.example.yaml's placeholders), GATEWAY_CONFIG from the ConfigMap it mounts,
// and REDIS_URL pointed at a real Redis, since /health/ready checks that Redis answers.

for (const overlay of OVERLAYS) {
  t.test(`${overlay}: the probe paths answer 200, and the Ingress' paths reach their routes`, async t => {
    const kubectl = requireKubectl(t)
    if (kubectl === undefined || requireBinary(t, 'redis-server') === undefined) return
    const { objects } = render(kubectl, join('overlays', overlay))
    const gateway = find(objects, 'Deployment', 'qwen-gateway')
    const container = gatewayContainer(gateway)
    const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-kubernetes-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const env = materializeMounts(objects, gateway.spec.template.spec, container, containerEnv(objects, container), dir)
    const store = await startRedis(t)
    const app = await build(t, { ...env, REDIS_URL: store.url, LOG_LEVEL: 'silent' })
    const config = loadConfig(env)

    const probes = { startup: container.startupProbe, liveness: container.livenessProbe, readiness: container.readinessProbe }
    for (const [kind, probe] of Object.entries(probes)) {
      t.equal(containerPort(container, probe.httpGet.port), config.PORT, `${kind} probe: on the gateway's port`)
      // Redis connects in the background: readiness may take a moment, as it does in a pod.
      const deadline = performance.now() + 5_000
      let res = await app.inject({ method: 'GET', url: probe.httpGet.path })
      while (res.statusCode !== 200 && performance.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 50))
        res = await app.inject({ method: 'GET', url: probe.httpGet.path })
      }
      t.equal(res.statusCode, 200, `${kind} probe: GET ${probe.httpGet.path} answers 200 without a client key`)
    }
    const ready = await app.inject({ method: 'GET', url: '/health/ready' })
    t.same(ready.json().checks, { upstream_keys: true, shared_state: true }, 'ready because the Secret\'s key is there and Redis answers')

    t.equal((await app.inject({ method: 'HEAD', url: '/api/hello' })).statusCode, 204, 'HEAD /api/hello (routed by the Ingress) answers')
    const unauthorized = await app.inject({ method: 'GET', url: '/v1/models' })
    t.equal(unauthorized.statusCode, 401, '/v1 wants a client key: the Secret\'s GATEWAY_API_KEYS are in force')
  })
}

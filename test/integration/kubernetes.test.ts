import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { loadConfig } from '../../src/config.ts'
import { build } from '../helper.ts'
import { loadCompose } from './compose.ts'
import { DEPLOY, ROOT, requireBinary, startRedis } from './servers.ts'

// deploy/kubernetes, checked without a cluster (there is no kubectl here): the manifests parsed with `yaml`, their
// wiring followed by hand (selectors, ports, secrets, probes, the rolling-update and shutdown budgets), and the probe
// paths asked of a real gateway configured with the container's own environment.

const DIR = join(DEPLOY, 'kubernetes')
const SECRET_EXAMPLE = 'secret.example.yaml'

type Manifest = Record<string, any> & { kind: string, metadata: { name: string, labels?: Record<string, string> } }

function loadManifests (file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map(document => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0].message}`)
    return document.toJS() as Manifest
  }).filter(Boolean)
}

const files = readdirSync(DIR).filter(name => name.endsWith('.yaml')).sort()
const kustomization = loadManifests('kustomization.yaml')[0]
const manifests = files.filter(name => name !== 'kustomization.yaml').flatMap(file => loadManifests(file).map(manifest => ({ file, manifest })))
const find = (kind: string, name: string) => {
  const found = manifests.find(({ manifest }) => manifest.kind === kind && manifest.metadata.name === name)?.manifest
  if (found === undefined) throw new Error(`no ${kind} ${name} in deploy/kubernetes`)
  return found
}

const gateway = find('Deployment', 'qwen-gateway')
const service = find('Service', 'qwen-gateway')
const budget = find('PodDisruptionBudget', 'qwen-gateway')
const redis = find('Deployment', 'qwen-gateway-redis')
const redisService = find('Service', 'qwen-gateway-redis')
const secret = find('Secret', 'qwen-gateway')
const container = gateway.spec.template.spec.containers[0]

/** Whether every key=value of a selector is among the labels. */
const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value)

/** A container port by number or by name. */
const containerPort = (spec: any, port: number | string): number | undefined =>
  typeof port === 'number' ? port : spec.ports?.find((entry: any) => entry.name === port)?.containerPort

/** The container's environment, with secretKeyRef values taken from the Secret example (placeholders). */
function containerEnv (spec: any): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of spec.env ?? []) {
    const ref = entry.valueFrom?.secretKeyRef
    env[entry.name] = ref ? String(find('Secret', ref.name).stringData?.[ref.key]) : String(entry.value)
  }
  return env
}

t.test('the manifests parse, kustomization.yaml lists them, and the Secret example stays out of it', async t => {
  t.same(files, ['deployment.yaml', 'kustomization.yaml', 'pod-disruption-budget.yaml', 'redis.yaml', SECRET_EXAMPLE, 'service.yaml'])
  for (const { file, manifest } of manifests) {
    t.ok(manifest.apiVersion && manifest.kind && manifest.metadata?.name, `${file}: ${manifest.kind} ${manifest.metadata?.name} has apiVersion, kind and name`)
  }
  t.equal(kustomization.kind, 'Kustomization')
  t.same([...kustomization.resources].sort(), files.filter(name => name !== 'kustomization.yaml' && name !== SECRET_EXAMPLE),
    'every manifest but the Secret example is a resource: `kubectl apply -k` never overwrites real keys with placeholders')
  const image = kustomization.images.find((entry: any) => entry.name === container.image.split(':')[0])
  t.equal(`${image?.newName}:${image?.newTag}`, container.image, 'the kustomize image entry names the Deployment\'s image as it stands')
  t.equal(container.image, loadCompose({ GATEWAY_API_KEYS: 'k', GRAFANA_ADMIN_PASSWORD: 'p' }, { useDocker: false }).services['gateway-1'].image,
    'the image is the one docker compose builds')
})

t.test('selectors match the pods they mean, and only those', async t => {
  const gatewayLabels = gateway.spec.template.metadata.labels
  const redisLabels = redis.spec.template.metadata.labels
  t.ok(selects(gateway.spec.selector.matchLabels, gatewayLabels), 'the gateway Deployment selects its own pods')
  t.ok(selects(redis.spec.selector.matchLabels, redisLabels), 'the Redis Deployment selects its own pods')
  t.notOk(selects(gateway.spec.selector.matchLabels, redisLabels), 'the gateway Deployment does not select Redis')
  t.notOk(selects(redis.spec.selector.matchLabels, gatewayLabels), 'and the Redis one not the gateways')
  t.ok(selects(service.spec.selector, gatewayLabels) && !selects(service.spec.selector, redisLabels), 'the Service sends to gateway pods only')
  t.ok(selects(redisService.spec.selector, redisLabels) && !selects(redisService.spec.selector, gatewayLabels), 'the Redis Service to Redis only')
  t.ok(selects(budget.spec.selector.matchLabels, gatewayLabels) && !selects(budget.spec.selector.matchLabels, redisLabels), 'the PodDisruptionBudget covers the gateway pods')
  t.equal(budget.spec.maxUnavailable, 1, 'at most one gateway pod disrupted at a time')
})

t.test('ports, secrets and the environment form a valid gateway configuration', async t => {
  const env = containerEnv(container)
  const config = loadConfig(env)
  t.equal(config.HOST, '0.0.0.0', 'listens on the pod\'s interfaces')
  t.equal(config.TRUST_PROXY, true)
  t.equal(containerPort(container, 'http'), config.PORT, 'the named port http is the port the gateway listens on')
  t.equal(containerPort(container, service.spec.ports[0].targetPort), config.PORT, 'the Service\'s targetPort reaches it')
  t.equal(config.topology.clients.length, 1, 'client keys come from the Secret')

  const refs = (container.env as any[]).filter(entry => entry.valueFrom).map(entry => entry.valueFrom.secretKeyRef)
  t.same(refs.map(ref => ref.key).sort(), ['DASHSCOPE_API_KEY', 'GATEWAY_API_KEYS'], 'the two secrets come from a Secret')
  for (const ref of refs) {
    t.equal(ref.name, secret.metadata.name, `${ref.key}: the Secret example is the one referenced`)
    t.type(secret.stringData[ref.key], 'string', `${ref.key} is in the Secret example`)
    t.not(ref.optional, true, `${ref.key}: a missing Secret stops the pod instead of starting it without the key`)
  }
  t.throws(() => loadConfig({ ...env, GATEWAY_API_KEYS: '' }), /HOST="0\.0\.0\.0" would open the gateway to the network without client keys/,
    'with an empty GATEWAY_API_KEYS the gateway refuses to start')
  const example = readFileSync(join(ROOT, '.env.example'), 'utf8')
  const unknown = Object.keys(env).filter(name => !new RegExp(`^${name}=`, 'm').test(example))
  t.same(unknown, [], 'every variable set is one the gateway reads (.env.example lists them all)')

  const redisUrl = new URL(env.REDIS_URL)
  t.equal(redisUrl.hostname, redisService.metadata.name, 'REDIS_URL names the Redis Service')
  t.equal(Number(redisUrl.port), redisService.spec.ports[0].port, 'on its port')
  const redisContainer = redis.spec.template.spec.containers[0]
  t.equal(containerPort(redisContainer, redisService.spec.ports[0].targetPort), 6379, 'which reaches Redis\' port')
  const compose = loadCompose({ GATEWAY_API_KEYS: 'k', GRAFANA_ADMIN_PASSWORD: 'p' }, { useDocker: false })
  t.same(redisContainer.args, compose.services.redis.command, 'Redis runs with the flags docker-compose.yml gives it')
  t.equal(redisContainer.image, compose.services.redis.image, 'and the same image')
})

t.test('rolling updates never go below two ready pods, and shutdown fits in the grace period', async t => {
  const spec = gateway.spec
  t.equal(spec.replicas, 2)
  t.same(spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } })
  const pod = spec.template.spec
  const config = loadConfig(containerEnv(container))
  const preStop = container.lifecycle?.preStop
  const sleepSeconds = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command?.at(-1))
  t.ok(sleepSeconds >= 3, `preStop waits ${sleepSeconds} s, so the pod leaves the endpoints before SIGTERM`)
  if (preStop?.exec) t.same(preStop.exec.command.slice(0, -1), ['sleep'], 'with the image\'s own sleep (coreutils in the bookworm-slim Node image)')
  t.ok(pod.terminationGracePeriodSeconds > sleepSeconds + config.SHUTDOWN_GRACE_MS / 1000,
    `terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds}) > preStop (${sleepSeconds} s) + SHUTDOWN_GRACE_MS (${config.SHUTDOWN_GRACE_MS / 1000} s)`)
  t.equal(container.readinessProbe.httpGet.path, '/health/ready', 'readiness is /health/ready')
  t.equal(container.livenessProbe.httpGet.path, '/health/live', 'liveness is /health/live: never Redis or the upstream')
  t.equal(container.startupProbe.httpGet.path, '/health/live')
  const startupSeconds = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold
  t.ok(startupSeconds >= 30, `${startupSeconds} s to start before the kubelet gives up`)
})

t.test('both pods run as Kubernetes\' restricted Pod Security Standard asks', async t => {
  for (const deployment of [gateway, redis]) {
    const pod = deployment.spec.template.spec
    const name = deployment.metadata.name
    t.equal(pod.securityContext.runAsNonRoot, true, `${name}: runAsNonRoot`)
    t.ok(pod.securityContext.runAsUser > 0, `${name}: a numeric non-root user, which the kubelet can check`)
    t.equal(pod.securityContext.seccompProfile?.type, 'RuntimeDefault', `${name}: seccomp RuntimeDefault`)
    t.equal(pod.automountServiceAccountToken, false, `${name}: no service account token`)
    for (const spec of pod.containers) {
      t.equal(spec.securityContext.allowPrivilegeEscalation, false, `${name}/${spec.name}: no privilege escalation`)
      t.same(spec.securityContext.capabilities.drop, ['ALL'], `${name}/${spec.name}: no capabilities`)
      t.equal(spec.securityContext.readOnlyRootFilesystem, true, `${name}/${spec.name}: read-only root file system`)
      t.ok(spec.resources?.requests?.cpu && spec.resources?.requests?.memory && spec.resources?.limits?.memory, `${name}/${spec.name}: resource requests and a memory limit`)
      for (const mount of spec.volumeMounts ?? []) {
        t.ok(pod.volumes.some((volume: any) => volume.name === mount.name && volume.emptyDir), `${name}/${spec.name}: ${mount.mountPath} is a declared emptyDir`)
      }
    }
  }
  t.ok(container.volumeMounts.some((mount: any) => mount.mountPath === '/tmp'), 'the gateway has a writable /tmp')
  const uid = /^USER\s+(\S+)/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1]
  t.equal(uid, 'node', 'the image runs as node, which is 1000 in the node images: runAsUser matches it')
  t.equal(gateway.spec.template.spec.securityContext.runAsUser, 1000)
})

t.test('the probes answer 200 on a gateway configured with the container\'s environment', async t => {
  if (requireBinary(t, 'redis-server') === undefined) return
  // The container's environment, with REDIS_URL pointed at a real Redis: /health/ready checks that it answers.
  const store = await startRedis(t)
  const app = await build(t, { ...containerEnv(container), REDIS_URL: store.url, LOG_LEVEL: 'silent' })
  const probes = { startup: container.startupProbe, liveness: container.livenessProbe, readiness: container.readinessProbe }
  const config = loadConfig(containerEnv(container))
  for (const [kind, probe] of Object.entries(probes)) {
    t.equal(containerPort(container, probe.httpGet.port), config.PORT, `${kind} probe: its port is the gateway's`)
    // Redis connects in the background: readiness may take a moment, as it does in a pod.
    const deadline = performance.now() + 5_000
    let res = await app.inject({ method: 'GET', url: probe.httpGet.path })
    while (res.statusCode !== 200 && performance.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 50))
      res = await app.inject({ method: 'GET', url: probe.httpGet.path })
    }
    t.equal(res.statusCode, 200, `${kind} probe: GET ${probe.httpGet.path} answers 200 without a client key`)
  }
})

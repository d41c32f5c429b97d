import t from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadConfig } from '../../src/config.ts'
import { loadCompose } from './compose.ts'
import {
  containerEnv, containerPort, containersOf, find, gatewayContainer, materializeMounts, ofKind, preStopSeconds, secretExample, selects
} from './kubernetes-objects.ts'
import { OVERLAYS, render, requireKubectl, type Overlay } from './kubernetes-render.ts'
import { describe, type Manifest } from './kubernetes-schemas.ts'
import { ROOT, type BinaryTest, type Teardown } from './servers.ts'

// What must hold between the rendered objects of each overlay, as the cluster would wire them: grace periods, secrets
// by reference only, resources, the restricted Pod Security Standard, probes, what the Ingress routes, what the
// NetworkPolicies let through, replicas and disruption, and Redis.

const NAMESPACES: Record<Overlay, string> = { dev: 'qwen-gateway-dev', production: 'qwen-gateway' }
/** Variable names whose values are secrets: they may only come from a Secret. */
const SECRET_NAME = /KEY|SECRET|PASSW|TOKEN|CREDENTIAL/i

const compose = () => loadCompose({ GATEWAY_API_KEYS: 'k', GRAFANA_ADMIN_PASSWORD: 'p' }, { useDocker: false })

function overlay (t: BinaryTest & Teardown, name: Overlay) {
  const kubectl = requireKubectl(t)
  if (kubectl === undefined) return undefined
  const { objects } = render(kubectl, join('overlays', name))
  const gateway = find(objects, 'Deployment', 'qwen-gateway')
  const container = gatewayContainer(gateway)
  const pod = gateway.spec.template.spec
  const podEnv = containerEnv(objects, container)
  // The ConfigMaps the pod mounts, written where the environment's paths (GATEWAY_CONFIG) can find them.
  const dir = mkdtempSync(join(tmpdir(), 'qwen-gateway-kubernetes-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return { objects, gateway, container, pod, podEnv, env: materializeMounts(objects, pod, container, podEnv, dir) }
}

/** The pod labels a selector-bearing object picks among the overlay's Deployments. */
const podsSelected = (objects: Manifest[], selector: Record<string, string>) =>
  ofKind(objects, 'Deployment').filter(deployment => selects(selector, deployment.spec.template.metadata.labels)).map(deployment => deployment.metadata.name)

/** Whether an Ingress path would send a request path to its backend. */
function routes (path: { path: string, pathType: string }, requestPath: string): boolean {
  if (path.pathType === 'Exact') return requestPath === path.path
  const prefix = path.path.replace(/\/+$/, '')
  // Prefix matches whole path elements; ImplementationSpecific is taken as a plain string prefix, the widest reading.
  return path.pathType === 'Prefix' ? requestPath === prefix || requestPath.startsWith(`${prefix}/`) || prefix === '' : requestPath.startsWith(path.path)
}

for (const name of OVERLAYS) {
  t.test(`${name}: every object lives in the overlay's namespace, which enforces the restricted Pod Security Standard`, async t => {
    const rendered = overlay(t, name)
    if (rendered === undefined) return
    const [namespace] = ofKind(rendered.objects, 'Namespace')
    t.equal(namespace?.metadata.name, NAMESPACES[name])
    t.equal(namespace?.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted')
    for (const object of rendered.objects.filter(object => object.kind !== 'Namespace')) {
      t.equal(object.metadata.namespace, NAMESPACES[name], `${describe(object)} is in ${NAMESPACES[name]}`)
    }
    t.equal(rendered.container.image, compose().services['gateway-1'].image, 'the image is the one docker compose builds (overlays may point at a registry)')
  })

  t.test(`${name}: shutdown fits in the grace period, and the probes are the health routes`, async t => {
    const rendered = overlay(t, name)
    if (rendered === undefined) return
    const { pod, container, env } = rendered
    const config = loadConfig(env)
    const sleep = preStopSeconds(container)
    t.ok(sleep >= 5, `preStop waits ${sleep} s: the pod leaves the endpoints (ingress-nginx, kube-proxy) before SIGTERM`)
    if (container.lifecycle.preStop.exec) t.equal(container.lifecycle.preStop.exec.command[0], 'sleep', 'the image\'s own sleep (coreutils in bookworm-slim)')
    // The gateway exits at most one second after SHUTDOWN_GRACE_MS (README, "Overload and shutdown").
    const needed = sleep + config.SHUTDOWN_GRACE_MS / 1000 + 1
    t.ok(pod.terminationGracePeriodSeconds > needed,
      `terminationGracePeriodSeconds (${pod.terminationGracePeriodSeconds}) > preStop (${sleep} s) + SHUTDOWN_GRACE_MS (${config.SHUTDOWN_GRACE_MS / 1000} s) + 1 s`)
    t.equal(container.readinessProbe.httpGet.path, '/health/ready', 'readiness: /health/ready')
    t.equal(container.livenessProbe.httpGet.path, '/health/live', 'liveness: /health/live, never Redis or the upstream')
    t.equal(container.startupProbe.httpGet.path, '/health/live')
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      t.equal(containerPort(container, probe.httpGet.port), config.PORT, `${probe.httpGet.path}: on the port the gateway listens on`)
    }
    t.ok(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold >= 30, 'at least 30 s to start')
    t.same(rendered.gateway.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } }, 'a new pod is ready before an old one stops')
  })

  t.test(`${name}: no secret inline: keys come from the Secret by reference, and nothing else carries one`, async t => {
    const rendered = overlay(t, name)
    if (rendered === undefined) return
    const secret = secretExample()
    t.same(ofKind(rendered.objects, 'Secret'), [], 'no Secret object')
    for (const deployment of ofKind(rendered.objects, 'Deployment')) {
      for (const container of containersOf(deployment.spec.template.spec)) {
        const where = `${deployment.metadata.name}/${container.name}`
        for (const entry of container.env ?? []) {
          if ('value' in entry) {
            t.notMatch(entry.name, SECRET_NAME, `${where}: ${entry.name} is set inline, and is not a secret's name`)
            if (/^[a-z]+s?:\/\//.test(entry.value)) {
              const url = new URL(entry.value)
              t.ok(url.username === '' && url.password === '', `${where}: ${entry.name} carries no credentials`)
            }
          }
          const ref = entry.valueFrom?.secretKeyRef
          if (ref) {
            t.equal(ref.name, secret.metadata.name, `${where}: ${entry.name} from the Secret ${ref.name}`)
            t.type(secret.stringData[ref.key], 'string', `${where}: ${ref.key} is in secret.example.yaml, which shows the Secret to create`)
            t.not(ref.optional, true, `${where}: ${ref.key} required: without the Secret the pod waits instead of starting without a key`)
          }
        }
        for (const source of container.envFrom ?? []) {
          if (source.secretRef) t.equal(source.secretRef.name, secret.metadata.name, `${where}: envFrom the Secret`)
        }
      }
    }
    const refs = rendered.container.env.filter((entry: any) => entry.valueFrom?.secretKeyRef).map((entry: any) => entry.name).sort()
    t.same(refs, name === 'production' ? ['DASHSCOPE_API_KEY', 'GATEWAY_API_KEYS', 'REDIS_URL'] : ['DASHSCOPE_API_KEY', 'GATEWAY_API_KEYS'],
      'the upstream and client keys (and production\'s Redis URL, which may hold a password) from the Secret')
    for (const map of ofKind(rendered.objects, 'ConfigMap')) {
      for (const [key, text] of Object.entries(map.data as Record<string, string>)) {
        t.notMatch(text, /\bsk-[A-Za-z0-9]{8,}/, `${map.metadata.name}/${key}: no API key`)
      }
    }
    const file = parse(find(rendered.objects, 'ConfigMap', rendered.pod.volumes.find((volume: any) => volume.configMap).configMap.name).data['gateway.yaml'])
    for (const upstream of file.upstreams ?? []) t.notOk(upstream.api_keys, `gateway.yaml: upstream ${upstream.name} names its keys' variable instead of listing them`)
    for (const client of file.clients ?? []) t.notOk(client.key, `gateway.yaml: client ${client.name} names its key's variable (key_env)`)
  })

  t.test(`${name}: every container has requests and limits, and runs as the restricted Pod Security Standard asks`, async t => {
    const rendered = overlay(t, name)
    if (rendered === undefined) return
    for (const deployment of ofKind(rendered.objects, 'Deployment')) {
      const pod = deployment.spec.template.spec
      const owner = deployment.metadata.name
      t.equal(pod.securityContext.runAsNonRoot, true, `${owner}: runAsNonRoot`)
      t.ok(pod.securityContext.runAsUser > 0, `${owner}: a numeric non-root user, which the kubelet can check`)
      t.equal(pod.securityContext.seccompProfile?.type, 'RuntimeDefault', `${owner}: seccomp RuntimeDefault`)
      t.equal(pod.automountServiceAccountToken, false, `${owner}: no service account token`)
      for (const container of containersOf(pod)) {
        const where = `${owner}/${container.name}`
        for (const kind of ['requests', 'limits']) {
          for (const resource of ['cpu', 'memory']) t.ok(container.resources?.[kind]?.[resource], `${where}: ${kind}.${resource}`)
        }
        t.equal(container.securityContext.allowPrivilegeEscalation, false, `${where}: no privilege escalation`)
        t.same(container.securityContext.capabilities.drop, ['ALL'], `${where}: no capabilities`)
        t.notOk(container.securityContext.capabilities.add, `${where}: none added back`)
        t.equal(container.securityContext.readOnlyRootFilesystem, true, `${where}: read-only root file system`)
        t.notOk(container.securityContext.privileged, `${where}: not privileged`)
        for (const mount of container.volumeMounts ?? []) {
          const volume = pod.volumes.find((entry: any) => entry.name === mount.name)
          t.ok(volume?.emptyDir || (volume?.configMap && mount.readOnly), `${where}: ${mount.mountPath} is an emptyDir, or a read-only ConfigMap`)
        }
      }
    }
    t.ok(rendered.container.volumeMounts.some((mount: any) => mount.mountPath === '/tmp'), 'the gateway has a writable /tmp')
    t.equal(/^USER\s+(\S+)/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1], 'node', 'the image runs as node, uid 1000 in the Node images')
    t.equal(rendered.pod.securityContext.runAsUser, 1000, 'which is runAsUser')
  })

  t.test(`${name}: GATEWAY_CONFIG is a file of the mounted ConfigMap, and the environment a valid configuration`, async t => {
    const rendered = overlay(t, name)
    if (rendered === undefined) return
    const { env, podEnv, container, pod, objects } = rendered
    const mount = container.volumeMounts.find((entry: any) => podEnv.GATEWAY_CONFIG.startsWith(`${entry.mountPath}/`))
    t.ok(mount, `GATEWAY_CONFIG (${podEnv.GATEWAY_CONFIG}) is under a mount`)
    const volume = pod.volumes.find((entry: any) => entry.name === mount.name)
    const map = find(objects, 'ConfigMap', volume.configMap.name)
    t.type(map.data[podEnv.GATEWAY_CONFIG.slice(mount.mountPath.length + 1)], 'string', `of ConfigMap ${map.metadata.name}, which has that file`)
    const config = loadConfig(env)
    t.same(config.topology.upstreams.map(upstream => [upstream.name, upstream.keys.length]), [['dashscope', 1]], 'the file\'s upstream has the Secret\'s key')
    t.equal(config.topology.clients.length, 1, 'client keys come from the Secret')
    const example = readFileSync(join(ROOT, '.env.example'), 'utf8')
    t.same(Object.keys(podEnv).filter(variable => !new RegExp(`^${variable}=`, 'm').test(example)), [], 'every variable set is one the gateway reads (.env.example)')
    t.equal(containerPort(container, 'http'), loadConfig(env).PORT, 'the port named http is the gateway\'s')
  })

  t.test(`${name}: the Ingress routes the API to the Service with streaming settings, and never /metrics or /health`, async t => {
    const rendered = overlay(t, name)
    if (rendered === undefined) return
    const { objects, env } = rendered
    const config = loadConfig(env)
    const service = find(objects, 'Service', 'qwen-gateway')
    const [ingress, ...others] = ofKind(objects, 'Ingress')
    t.equal(others.length, 0, 'one Ingress')
    t.equal(ingress.spec.ingressClassName, 'nginx', 'for ingress-nginx')
    t.notOk(ingress.spec.defaultBackend, 'no default backend: unrouted paths never reach the gateway')
    const paths = ingress.spec.rules.flatMap((rule: any) => rule.http.paths)
    for (const path of paths) {
      t.equal(path.backend.service.name, service.metadata.name, `${path.path}: to the gateway Service`)
      t.ok(service.spec.ports.some((port: any) => port.name === path.backend.service.port.name || port.port === path.backend.service.port.number), `${path.path}: on one of its ports`)
    }
    const routed = (requestPath: string) => paths.some((path: any) => routes(path, requestPath))
    for (const open of ['/v1/chat/completions', '/v1/messages', '/v1/responses', '/v1/models', '/api/hello']) t.ok(routed(open), `${open} is routed`)
    for (const closed of ['/metrics', '/health', '/health/ready', '/health/live', '/', '/docs']) t.notOk(routed(closed), `${closed} is not`)

    const annotations = ingress.metadata.annotations ?? {}
    const nginx = (key: string) => annotations[`nginx.ingress.kubernetes.io/${key}`]
    t.equal(nginx('proxy-buffering'), 'off', 'answers are not buffered: SSE events arrive as they are sent')
    t.equal(nginx('proxy-request-buffering'), 'off', 'nor are request bodies')
    for (const timeout of ['proxy-read-timeout', 'proxy-send-timeout']) {
      const seconds = Number(nginx(timeout))
      t.ok(seconds > config.HEARTBEAT_INTERVAL_MS / 1000, `${timeout} (${seconds} s) > HEARTBEAT_INTERVAL_MS (${config.HEARTBEAT_INTERVAL_MS / 1000} s)`)
      t.ok(seconds >= config.UPSTREAM_HEADERS_TIMEOUT_MS / 1000, `${timeout} (${seconds} s) >= UPSTREAM_HEADERS_TIMEOUT_MS: a silent non-streamed answer is not cut first`)
    }
    const size = /^(\d+)([kmg]?)$/i.exec(nginx('proxy-body-size'))
    const bytes = Number(size?.[1]) * 1024 ** ' kmg'.indexOf((size?.[2] || ' ').toLowerCase())
    t.equal(bytes, config.BODY_LIMIT, `proxy-body-size (${nginx('proxy-body-size')}) is BODY_LIMIT: a larger body gets the gateway's own 413`)
  })

  t.test(`${name}: NetworkPolicies let in only ingress-nginx and Prometheus, and out only DNS, Redis and HTTPS`, async t => {
    const rendered = overlay(t, name)
    if (rendered === undefined) return
    const { objects, env } = rendered
    const gatewayLabels = rendered.gateway.spec.template.metadata.labels
    const policies = ofKind(objects, 'NetworkPolicy').filter(policy => selects(policy.spec.podSelector.matchLabels, gatewayLabels))
    t.ok(policies.length >= 2, `${policies.map(policy => policy.metadata.name).join(', ')} select the gateway pods`)
    t.ok(policies.some(policy => policy.spec.policyTypes.includes('Ingress')) && policies.some(policy => policy.spec.policyTypes.includes('Egress')),
      'both directions are restricted')

    const ingressRules = policies.flatMap(policy => policy.spec.ingress ?? [])
    const sources = ingressRules.flatMap((rule: any) => rule.from)
    t.ok(sources.length > 0 && ingressRules.every((rule: any) => rule.from?.length > 0 && rule.ports?.length > 0), 'every ingress rule names its sources and ports')
    t.same(sources.map((peer: any) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']).sort(), ['ingress-nginx', 'monitoring'],
      'from the ingress controller\'s namespace and the monitoring namespace, nothing else')
    t.ok(sources.every((peer: any) => peer.podSelector && !peer.ipBlock), 'and from the controller and Prometheus pods there only')
    for (const port of ingressRules.flatMap((rule: any) => rule.ports)) t.equal(containerPort(rendered.container, port.port), 3000, 'to the gateway\'s port')

    const egress = policies.flatMap(policy => policy.spec.egress ?? [])
    t.ok(egress.every((rule: any) => rule.ports?.length > 0 && rule.to?.length > 0), 'every egress rule names its destinations and ports')
    const ports = (rule: any) => rule.ports.map((port: any) => `${port.protocol}/${port.port}`).sort()
    const dns = egress.filter((rule: any) => rule.to.every((peer: any) => peer.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns'))
    t.same(dns.map(ports), [['TCP/53', 'UDP/53']], 'DNS: kube-dns, UDP and TCP 53')
    const redis = new URL(env.REDIS_URL)
    const redisPort = Number(redis.port || 6379)
    const toRedis = egress.filter((rule: any) => rule.ports.some((port: any) => port.port === redisPort))
    t.equal(toRedis.length, 1, `Redis: port ${redisPort}, REDIS_URL's`)
    if (name === 'dev') {
      t.same(toRedis[0].to.map((peer: any) => podsSelected(objects, peer.podSelector?.matchLabels)), [['qwen-gateway-redis']], 'towards the in-cluster Redis pods only')
    }
    const others = egress.filter((rule: any) => !dns.includes(rule) && !toRedis.includes(rule))
    t.same(others.map(ports), [['TCP/443']], 'and HTTPS to the upstreams (any address: their names resolve to changing ones)')
  })
}

t.test('dev: one replica and an in-cluster Redis like compose\'s, which only the gateway may reach; no autoscaler or budget', async t => {
  const rendered = overlay(t, 'dev')
  if (rendered === undefined) return
  const { objects, env } = rendered
  t.equal(rendered.gateway.spec.replicas, 1)
  t.same(ofKind(objects, 'HorizontalPodAutoscaler'), [])
  t.same(ofKind(objects, 'PodDisruptionBudget'), [], 'no PodDisruptionBudget: with one replica it would block every node drain')
  const redis = find(objects, 'Deployment', 'qwen-gateway-redis')
  const redisService = find(objects, 'Service', 'qwen-gateway-redis')
  const url = new URL(env.REDIS_URL)
  t.equal(url.hostname, redisService.metadata.name, 'REDIS_URL names the Redis Service')
  t.equal(Number(url.port), redisService.spec.ports[0].port, 'on its port')
  const redisContainer = redis.spec.template.spec.containers[0]
  t.equal(containerPort(redisContainer, redisService.spec.ports[0].targetPort), 6379, 'which reaches Redis\' port')
  t.same(podsSelected(objects, redisService.spec.selector), ['qwen-gateway-redis'], 'the Redis Service selects Redis only')
  t.same(podsSelected(objects, find(objects, 'Service', 'qwen-gateway').spec.selector), ['qwen-gateway'], 'the gateway Service the gateway only')
  t.same(redisContainer.args, compose().services.redis.command, 'Redis runs with the flags docker-compose.yml gives it')
  t.equal(redisContainer.image, compose().services.redis.image, 'and the same image')
  const policy = find(objects, 'NetworkPolicy', 'qwen-gateway-redis')
  t.same(podsSelected(objects, policy.spec.podSelector.matchLabels), ['qwen-gateway-redis'])
  t.same(policy.spec.ingress.flatMap((rule: any) => rule.from.map((peer: any) => podsSelected(objects, peer.podSelector.matchLabels))), [['qwen-gateway']],
    'Redis answers the gateway pods only')
  t.same(policy.spec.egress, [], 'and calls no one')
})

t.test('production: an autoscaler on CPU owns the replicas, a budget keeps one serving, Redis is yours, monitoring is there', async t => {
  const rendered = overlay(t, 'production')
  if (rendered === undefined) return
  const { objects, gateway } = rendered
  t.notOk('replicas' in gateway.spec, 'no replicas in the Deployment: `kubectl apply` would reset the autoscaler\'s count')
  const [hpa, ...more] = ofKind(objects, 'HorizontalPodAutoscaler')
  t.equal(more.length, 0)
  t.equal(hpa.apiVersion, 'autoscaling/v2')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: gateway.metadata.name }, 'it scales the gateway Deployment')
  t.same(hpa.spec.metrics.map((metric: any) => `${metric.type}/${metric.resource?.name}`), ['Resource/cpu'], 'on CPU')
  t.ok(hpa.spec.metrics[0].resource.target.averageUtilization > 0 && hpa.spec.metrics[0].resource.target.averageUtilization <= 90, 'below saturation')
  t.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas, `${hpa.spec.minReplicas} to ${hpa.spec.maxReplicas} replicas`)

  const [budget] = ofKind(objects, 'PodDisruptionBudget')
  t.same(podsSelected(objects, budget.spec.selector.matchLabels), ['qwen-gateway'], 'the PodDisruptionBudget covers the gateway pods')
  const leftStanding = budget.spec.minAvailable ?? hpa.spec.minReplicas - budget.spec.maxUnavailable
  t.ok(Number.isInteger(leftStanding) && leftStanding >= 1, `at least one replica stays during a drain (${leftStanding} of ${hpa.spec.minReplicas})`)

  t.same(ofKind(objects, 'Deployment').map(deployment => deployment.metadata.name), ['qwen-gateway'], 'no Redis of its own')
  const ref = rendered.container.env.find((entry: any) => entry.name === 'REDIS_URL')
  t.same(ref.valueFrom?.secretKeyRef, { name: 'qwen-gateway', key: 'REDIS_URL' }, 'REDIS_URL comes from the Secret')
  t.match(rendered.env.REDIS_URL, /^rediss?:\/\//, 'the example is a redis:// URL the gateway accepts')

  const monitor = find(objects, 'ServiceMonitor', 'qwen-gateway')
  const service = find(objects, 'Service', 'qwen-gateway')
  t.ok(selects(monitor.spec.selector.matchLabels, service.metadata.labels), 'the ServiceMonitor selects the gateway Service')
  t.same(monitor.spec.endpoints.map((endpoint: any) => [endpoint.port, endpoint.path]), [[service.spec.ports[0].name, '/metrics']], 'and scrapes /metrics on its port')
  t.ok(find(objects, 'PrometheusRule', 'qwen-gateway'))
})

import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parse } from 'yaml'
import { ALERTS, DASHBOARD, expectedCopies, PROMETHEUS_RULE } from './kubernetes-copies.ts'
import { find, ofKind, SECRET_EXAMPLE } from './kubernetes-objects.ts'
import { KUBERNETES, kubectlVersion, OVERLAYS, render, requireKubectl } from './kubernetes-render.ts'
import { describe, KINDS, schemaProblems, unknownFields, type Manifest } from './kubernetes-schemas.ts'
import { ROOT } from './servers.ts'

// deploy/kubernetes as kubectl renders it: each overlay renders without a warning, every object is of a known kind
// and valid against Kubernetes' schemas (kubernetes-schemas.ts), and the monitoring objects carry what docker
// compose's Prometheus and Grafana use. The invariants between objects are in kubernetes-invariants.test.ts, the
// probes on a running gateway in kubernetes-probes.test.ts.

/** Every file under a folder, relative to it. */
function filesUnder (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path).map(file => join(name, file)) : [name]
  })
}

t.test('each overlay renders with kubectl kustomize, without a warning', async t => {
  const kubectl = requireKubectl(t)
  if (kubectl === undefined) return
  t.comment(kubectlVersion(kubectl))
  for (const overlay of OVERLAYS) {
    const { objects, stderr, status } = render(kubectl, join('overlays', overlay))
    t.equal(status, 0, `${overlay}: kubectl kustomize succeeds`)
    // Deprecated fields (patchesStrategicMerge, bases, commonLabels, vars) are warned about here first.
    t.equal(stderr, '', `${overlay}: nothing on stderr`)
    t.ok(objects.length > 0, `${overlay}: ${objects.length} objects`)
  }
})

t.test('every rendered object is of a known kind and valid against the Kubernetes 1.36 schemas, field by field', async t => {
  const kubectl = requireKubectl(t)
  if (kubectl === undefined) return
  for (const overlay of OVERLAYS) {
    const { objects } = render(kubectl, join('overlays', overlay))
    for (const object of objects) t.same(schemaProblems(object), [], `${overlay}: ${describe(object)} (${object.apiVersion}) validates`)
    t.same(unknownFields(objects), [], `${overlay}: no field the API does not know`)
  }
})

t.test('the validation itself refuses unknown kinds, invalid values and unknown fields', async t => {
  const deployment = parse(readFileSync(join(KUBERNETES, 'base', 'deployment.yaml'), 'utf8')) as Manifest
  t.same(schemaProblems(deployment), [], 'the base Deployment as written validates')
  t.match(schemaProblems({ apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'g' } }), [/Gadget g: example\.com\/v1\/Gadget is not a kind these tests know/],
    'an unknown kind fails instead of being skipped')
  t.match(schemaProblems({ ...deployment, apiVersion: 'extensions/v1beta1' }), [/is not a kind these tests know/], 'so does a removed apiVersion')
  const badPort = structuredClone(deployment)
  badPort.spec.template.spec.containers[0].ports[0].containerPort = 'three thousand'
  t.match(schemaProblems(badPort), [/containerPort must be integer/], 'a value of the wrong type fails')
  const typo = structuredClone(deployment)
  typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.containers[0].readinessProbe
  t.match(unknownFields([typo]), [/Deployment qwen-gateway: .*'"readinesProbe"' does not exist in type 'IContainer'/], 'a misspelt field fails')
  t.same(Object.keys(KINDS).filter(kind => !/^(v1|apps\/v1|networking\.k8s\.io\/v1|autoscaling\/v2|policy\/v1|monitoring\.coreos\.com\/v1)\//.test(kind)), [],
    'only current, stable apiVersions are accepted')
})

t.test('the Secret example is no kustomization\'s resource, and no kustomization generates a Secret', async t => {
  const kustomizations = filesUnder(KUBERNETES).filter(file => /(^|\/)kustomization\.yaml$/.test(file))
  t.ok(kustomizations.length >= 4, `${kustomizations.join(', ')}`)
  for (const file of kustomizations) {
    const kustomization = parse(readFileSync(join(KUBERNETES, file), 'utf8'))
    const listed = [...(kustomization.resources ?? []), ...(kustomization.patches ?? []).map((patch: any) => patch.path)]
    t.notOk(listed.some((path: string) => path.endsWith('secret.example.yaml')), `${file}: does not list secret.example.yaml`)
    t.notOk(kustomization.secretGenerator, `${file}: generates no Secret`)
  }
  t.equal(relative(KUBERNETES, SECRET_EXAMPLE), 'secret.example.yaml', 'it sits beside the folders, in none of them')
})

t.test('the monitoring copies of alerts.yml and the dashboard are up to date', async t => {
  for (const [file, text] of Object.entries(expectedCopies())) {
    t.equal(readFileSync(file, 'utf8'), text, `${relative(ROOT, file)} (node test/integration/kubernetes-copies.ts --write)`)
  }
  t.same(parse(readFileSync(PROMETHEUS_RULE, 'utf8')).spec.groups, parse(readFileSync(ALERTS, 'utf8')).groups, 'the PrometheusRule\'s groups are alerts.yml\'s')
})

t.test('the rendered PrometheusRule carries alerts.yml\'s rules, and the dashboard ConfigMap Grafana\'s dashboard', async t => {
  const kubectl = requireKubectl(t)
  if (kubectl === undefined) return
  const { objects } = render(kubectl, join('overlays', 'production'))
  const alerts = parse(readFileSync(ALERTS, 'utf8'))
  const rule = find(objects, 'PrometheusRule', 'qwen-gateway')
  t.same(rule.spec.groups, alerts.groups, 'the rendered PrometheusRule\'s groups equal deploy/prometheus/alerts.yml\'s')
  t.ok(alerts.groups.flatMap((group: any) => group.rules).length >= 8, 'all the alerts, not a few')

  const dashboards = ofKind(objects, 'ConfigMap').filter(map => map.metadata.labels?.grafana_dashboard === '1')
  t.equal(dashboards.length, 1, 'one ConfigMap for Grafana\'s sidecar (label grafana_dashboard: "1")')
  t.same(Object.values(dashboards[0].data), [readFileSync(DASHBOARD, 'utf8')], 'holding deploy/grafana\'s dashboard as it is')
  t.match(dashboards[0].metadata.name, /^qwen-gateway-dashboard$/, 'under one stable name: an edit replaces it instead of adding a second copy')
  const uids = new Set([...readFileSync(DASHBOARD, 'utf8').matchAll(/"uid": "([^"]+)"/g)].map(match => match[1]))
  t.ok(uids.has('prometheus'), 'its panels use the data source uid "prometheus", kube-prometheus-stack\'s default')

  const monitor = find(objects, 'ServiceMonitor', 'qwen-gateway')
  const service = find(objects, 'Service', 'qwen-gateway')
  const jobs = new Set([...JSON.stringify(alerts).matchAll(/job=\\"([^\\]+)\\"/g)].map(match => match[1]))
  t.same([...jobs], [service.metadata.name], 'the alerts\' job is the Service\'s name, the job label a ServiceMonitor gives its targets')
  t.notOk(monitor.spec.jobLabel, 'and no jobLabel changes that')
  t.same(monitor.metadata.labels?.release, rule.metadata.labels?.release, 'the ServiceMonitor and the rules are picked up by the same Prometheus')
})

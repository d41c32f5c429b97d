import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from 'yaml'
import { startStack } from '../helper.ts'
import { GATEWAY_FAMILIES, dashboardQueries, exportedSeriesNames, familyOf, metricNames } from './promql.ts'
import { DEPLOY } from './servers.ts'

// The provisioned Grafana dashboard and the alert rules against the metrics the gateway exports. promtool checks
// the rules' syntax and prometheus.test.ts runs every dashboard query on a real Prometheus; here the metric names
// themselves are checked, so a renamed metric cannot leave an empty panel or a silent alert.

const GRAFANA = join(DEPLOY, 'grafana')
const loadDashboard = async () => JSON.parse(await readFile(join(GRAFANA, 'dashboards', 'qwen-gateway.json'), 'utf8'))
const loadAlerts = async () => parse(await readFile(join(DEPLOY, 'prometheus', 'alerts.yml'), 'utf8'))
const alertExprs = (alerts: any): Array<{ alert: string, expr: string }> =>
  alerts.groups.flatMap((group: any) => group.rules.map((rule: any) => ({ alert: rule.alert ?? rule.record, expr: rule.expr })))

t.test('the Grafana provisioning: one Prometheus data source, and a file provider for the dashboard', async t => {
  const datasources = parse(await readFile(join(GRAFANA, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'))
  t.equal(datasources.apiVersion, 1)
  t.equal(datasources.datasources.length, 1)
  t.match(datasources.datasources[0], { type: 'prometheus', uid: 'prometheus', access: 'proxy', url: 'http://prometheus:9090', isDefault: true })
  const providers = parse(await readFile(join(GRAFANA, 'provisioning', 'dashboards', 'qwen-gateway.yml'), 'utf8'))
  t.equal(providers.apiVersion, 1)
  t.match(providers.providers[0], { type: 'file', options: { path: '/etc/grafana/dashboards' } })
})

t.test('the dashboard parses, lays out its panels on the grid, and uses the provisioned data source', async t => {
  const dashboard = await loadDashboard()
  t.equal(dashboard.uid, 'qwen-gateway')
  t.ok(dashboard.title)
  const panels: any[] = dashboard.panels
  const ids = panels.map(panel => panel.id)
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  const overlaps: string[] = []
  for (const [i, a] of panels.entries()) {
    t.ok(a.gridPos.x >= 0 && a.gridPos.x + a.gridPos.w <= 24, `"${a.title}" fits the 24 columns`)
    for (const b of panels.slice(i + 1)) {
      const apart = a.gridPos.x + a.gridPos.w <= b.gridPos.x || b.gridPos.x + b.gridPos.w <= a.gridPos.x ||
        a.gridPos.y + a.gridPos.h <= b.gridPos.y || b.gridPos.y + b.gridPos.h <= a.gridPos.y
      if (!apart) overlaps.push(`${a.title} / ${b.title}`)
    }
  }
  t.same(overlaps, [], 'no two panels overlap')
  const wrongSource: string[] = []
  for (const panel of panels.filter(panel => panel.type !== 'row')) {
    t.ok(panel.targets?.length > 0, `"${panel.title}" has a query`)
    for (const source of [panel.datasource, ...panel.targets.map((target: any) => target.datasource)]) {
      if (source?.uid !== 'prometheus' || source?.type !== 'prometheus') wrongSource.push(panel.title)
    }
  }
  t.same(wrongSource, [], 'every panel and query uses the provisioned data source (uid "prometheus")')
  for (const variable of dashboard.templating.list) t.equal(variable.datasource?.uid, 'prometheus', `variable $${variable.name} too`)
})

t.test('the dashboard has the panels people look for', async t => {
  const queries = dashboardQueries(await loadDashboard())
  // A panel's queries together: a panel may show one thing with several queries (RSS and heap).
  const byPanel = new Map<string, string[]>()
  for (const query of queries) byPanel.set(query.panel, [...(byPanel.get(query.panel) ?? []), query.expr])
  const panels = [...byPanel].map(([panel, exprs]) => ({ panel, expr: exprs.join('\n') }))
  const has = (description: string, test: (expr: string) => boolean) => {
    const found = panels.filter(panel => test(panel.expr))
    t.ok(found.length > 0, `${description}: ${found.map(panel => panel.panel).join('; ') || 'MISSING'}`)
  }
  has('requests per second by route and status', expr => /rate\(http_request_duration_seconds_count/.test(expr) && /by \(route, status_code\)/.test(expr) && !/status_code=~/.test(expr))
  has('errors per second by route and status', expr => /rate\(http_request_duration_seconds_count/.test(expr) && /by \(route, status_code\)/.test(expr) && /status_code=~"4\.\.\|5\.\."/.test(expr))
  for (const q of ['0.5', '0.95', '0.99']) {
    has(`time to first token p${Number(q) * 100} per model`, expr => expr.split('\n').some(line => line.startsWith(`histogram_quantile(${q}, sum by (model, le) (rate(qwen_gateway_time_to_first_token_seconds_bucket`)))
  }
  has('tokens per second per model', expr => /sum by \(model[,)]/.test(expr) && /rate\(qwen_gateway_tokens_total/.test(expr))
  has('streams in flight', expr => /qwen_gateway_streams_in_flight/.test(expr))
  has('upstream errors', expr => /rate\(qwen_gateway_upstream_errors_total/.test(expr))
  has('upstream retries', expr => /rate\(qwen_gateway_upstream_retries_total/.test(expr))
  has('key health', expr => /qwen_gateway_upstream_key_up/.test(expr) && /by \(upstream, key\)/.test(expr))
  has('event-loop lag', expr => /nodejs_eventloop_lag_p99_seconds/.test(expr))
  has('memory', expr => /process_resident_memory_bytes/.test(expr) && /nodejs_heap_size_used_bytes/.test(expr))
})

t.test('every metric the dashboard and the alert rules read is one the gateway exports', async t => {
  const exported = exportedSeriesNames()
  t.comment(`exported: ${[...exported].sort().join(', ')}`)
  const sources = [
    ...dashboardQueries(await loadDashboard()).map(query => ({ where: `panel "${query.panel}" ${query.refId}`, expr: query.expr })),
    ...alertExprs(await loadAlerts()).map(rule => ({ where: `alert ${rule.alert}`, expr: rule.expr }))
  ]
  const dashboard = await loadDashboard()
  for (const variable of dashboard.templating.list) {
    // label_values(<selector>, label): the selector is PromQL.
    const selector = String(variable.definition ?? variable.query?.query ?? '').match(/^label_values\((.*),\s*\w+\)$/)?.[1]
    if (selector) sources.push({ where: `variable $${variable.name}`, expr: selector })
  }
  const unknown: string[] = []
  const used = new Set<string>()
  for (const { where, expr } of sources) {
    const names = metricNames(expr)
    if (names.length === 0) unknown.push(`${where}: reads no metric at all`)
    for (const name of names) {
      used.add(name)
      if (!exported.has(name)) unknown.push(`${where}: ${name}`)
    }
  }
  t.comment(`used: ${[...used].sort().join(', ')}`)
  t.same(unknown, [], 'no query reads a metric the gateway does not export')
  const unused = Object.keys(GATEWAY_FAMILIES).filter(family => ![...used].some(name => familyOf(name) === family))
  t.same(unused, [], 'and every gateway family appears somewhere on the dashboard or in an alert')
})

t.test('the metric families the dashboard relies on are on a live /metrics, with the types it assumes', async t => {
  const { origin } = await startStack(t, { env: { DASHSCOPE_API_KEY: 'sk-one,sk-two' } })
  const text = await (await fetch(`${origin}/metrics`)).text()
  const types = Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(match => [match[1], match[2]]))
  const problems: string[] = []
  for (const [family, type] of Object.entries(GATEWAY_FAMILIES)) {
    if (types[family] === undefined) problems.push(`${family} is not exported`)
    else if (types[family] !== type) problems.push(`${family} is a ${types[family]}, not a ${type}`)
  }
  for (const name of exportedSeriesNames()) {
    const family = familyOf(name)
    if (name !== 'up' && !(family in GATEWAY_FAMILIES) && types[family] === undefined) problems.push(`${name} is not exported`)
  }
  t.same(problems, [], `${Object.keys(GATEWAY_FAMILIES).length} gateway families and the runtime metrics used are there`)
  const notOnDashboard = Object.keys(types).filter(family => family.startsWith('qwen_gateway_') && !(family in GATEWAY_FAMILIES))
  if (notOnDashboard.length > 0) t.comment(`exported but on no panel or alert yet: ${notOnDashboard.join(', ')}`)
})

t.test('metricNames reads PromQL the way Prometheus does', async t => {
  t.same(metricNames('sum by (model, le) (rate(a_bucket{job="x", instance=~"$instance"}[$__rate_interval]))'), ['a_bucket'])
  t.same(metricNames('histogram_quantile(0.95, sum by (le) (rate(b_bucket[5m]))) > 10 and on (model) c_total offset 5m'), ['b_bucket', 'c_total'])
  t.same(metricNames('absent(up{job="qwen-gateway"} == 1)'), ['up'])
  t.same(metricNames('x / ignoring (code) group_left y * 1e3'), ['x', 'y'])
  t.same(metricNames('{__name__="z"}'), [])
})

import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { postJson, readEvents, startStack, user } from '../helper.ts'
import { dashboardQueries, grafanaVariables } from './promql.ts'
import {
  DEPLOY, readDeploy, renderPrometheusConf, replicaTargets, requireBinary, runTool, startPrometheus, tempDir
} from './servers.ts'

// deploy/prometheus/ with promtool and a real Prometheus scraping real gateways.

const PROMETHEUS_DIR = join(DEPLOY, 'prometheus')

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Polls fn until it returns a truthy value (bounded); the last value otherwise. */
async function eventually<T> (fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = performance.now() + timeoutMs
  let value = await fn()
  while (!value && performance.now() < deadline) {
    await sleep(250)
    value = await fn()
  }
  return value
}

const alertNames = (rules: string) => [...rules.matchAll(/^\s*-\s*alert:\s*(\S+)/gm)].map(match => match[1])

t.test('promtool check config accepts the shipped prometheus.yml, as shipped and rendered for loopback', async t => {
  if (requireBinary(t, 'promtool') === undefined) return
  const shipped = await runTool('promtool', ['check', 'config', join(PROMETHEUS_DIR, 'prometheus.yml')])
  for (const line of (shipped.stdout + shipped.stderr).trim().split('\n')) t.comment(line)
  t.equal(shipped.code, 0, 'the shipped file')
  t.match(shipped.stdout, /SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/)
  t.match(shipped.stdout, /SUCCESS: 1 rule files found/)

  const dir = await tempDir(t, 'promtool')
  await writeFile(join(dir, 'prometheus.yml'), renderPrometheusConf(await readDeploy('prometheus/prometheus.yml'), { targets: replicaTargets('http://127.0.0.1:3001', 'http://127.0.0.1:3002') }))
  await writeFile(join(dir, 'alerts.yml'), await readDeploy('prometheus/alerts.yml'))
  const rendered = await runTool('promtool', ['check', 'config', join(dir, 'prometheus.yml')])
  if (rendered.code !== 0) t.comment(rendered.stdout + rendered.stderr)
  t.equal(rendered.code, 0, 'the file rendered for loopback')
})

t.test('promtool check rules accepts the alert rules, and promtool test rules proves each one fires', async t => {
  if (requireBinary(t, 'promtool') === undefined) return
  const rules = await readDeploy('prometheus/alerts.yml')
  const names = alertNames(rules)
  t.same(
    ['QwenGatewayTargetDown', 'QwenGatewayHighErrorRatio', 'QwenGatewayUpstreamKeyDown', 'QwenGatewayTimeToFirstTokenHigh'].filter(name => !names.includes(name)),
    [], 'the alerts the issue asks for are there: target down, high error ratio, upstream key down, TTFT p95 too high')

  const check = await runTool('promtool', ['check', 'rules', join(PROMETHEUS_DIR, 'alerts.yml')])
  for (const line of (check.stdout + check.stderr).trim().split('\n')) t.comment(line)
  t.equal(check.code, 0)
  t.match(check.stdout, new RegExp(`SUCCESS: ${names.length} rules found`))

  const unit = await runTool('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: PROMETHEUS_DIR })
  for (const line of (unit.stdout + unit.stderr).trim().split('\n').filter(Boolean)) t.comment(line)
  t.equal(unit.code, 0, 'promtool test rules passes')
  t.match(unit.stdout, /SUCCESS/)
  const tests = await readFile(join(PROMETHEUS_DIR, 'alerts.test.yml'), 'utf8')
  const untested = names.filter(name => !new RegExp(`alertname:\\s*${name}\\s*$[\\s\\S]*?exp_alerts:\\s*\\n\\s*-`, 'm').test(tests))
  t.same(untested, [], 'every alert has a test case in which it fires')
})

t.test('a real Prometheus scrapes both replicas, evaluates the rules, and runs every dashboard query', async t => {
  if (requireBinary(t, 'prometheus') === undefined) return
  const one = await startStack(t)
  const two = await startStack(t)
  const prometheus = await startPrometheus(t, {
    config: renderPrometheusConf(await readDeploy('prometheus/prometheus.yml'), { targets: replicaTargets(one.origin, two.origin) }),
    files: { 'alerts.yml': await readDeploy('prometheus/alerts.yml') }
  })
  const instances = [one, two].map(stack => new URL(stack.origin).host).sort()

  const up = await eventually(async () => {
    const result = await prometheus.query('up{job="qwen-gateway"}')
    return result.length === 2 && result.every(series => series.value[1] === '1') ? result : null
  })
  t.ok(up, 'up == 1 for both replicas')
  t.same(up?.map(series => series.metric.instance).sort(), instances, 'one target per replica, scraped directly')
  t.ok(up?.every(series => series.metric.replica === '127.0.0.1'), 'the replica label comes from the target\'s host')

  const traffic = async () => {
    for (const stack of [one, two]) {
      const json = await postJson(`${stack.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('count my tokens') })
      t.equal(json.status, 200)
      await json.text()
      const stream = await postJson(`${stack.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('stream please'), stream: true })
      t.equal((await readEvents(stream)).at(-1)?.data, '[DONE]')
    }
  }
  await traffic()
  const tokens = await eventually(async () => {
    const result = await prometheus.query('sum by (instance) (qwen_gateway_tokens_total{job="qwen-gateway", model="qwen-plus"})')
    return result.length === 2 && result.every(series => Number(series.value[1]) > 0) ? result : null
  })
  t.ok(tokens, `qwen_gateway_tokens_total has a value for each replica: ${JSON.stringify(tokens?.map(series => [series.metric.instance, series.value[1]]))}`)
  const ttft = await eventually(async () => {
    const result = await prometheus.query('sum(qwen_gateway_time_to_first_token_seconds_count{job="qwen-gateway"})')
    return Number(result[0]?.value[1]) >= 2 ? result : null
  })
  t.ok(ttft, 'the streams\' time to first token was recorded')

  const rules = await eventually(async () => {
    const body = await prometheus.api('rules')
    const group = body.data?.groups?.find((candidate: any) => candidate.name === 'qwen-gateway')
    return group && group.rules.every((rule: any) => rule.lastEvaluation && !rule.lastEvaluation.startsWith('0001')) ? group : null
  })
  t.ok(rules, 'the rule group was loaded and evaluated')
  t.same(rules?.rules.map((rule: any) => rule.name), alertNames(await readDeploy('prometheus/alerts.yml')), 'every alert rule is loaded')
  t.same(rules?.rules.filter((rule: any) => rule.health !== 'ok').map((rule: any) => `${rule.name}: ${rule.lastError}`), [], 'every rule evaluates without error')
  const firing = (await prometheus.api('alerts')).data.alerts.map((alert: any) => alert.labels.alertname)
  t.same(firing, [], 'nothing is pending or firing on a healthy pair of replicas')

  // promtool cannot check a Grafana dashboard's PromQL; the real Prometheus can: a parse error is a 400.
  const dashboard = JSON.parse(await readDeploy('grafana/dashboards/qwen-gateway.json'))
  const queries = dashboardQueries(dashboard)
  t.ok(queries.length >= 20, `${queries.length} dashboard queries`)
  const failures: string[] = []
  for (const { panel, expr } of queries) {
    const body = await prometheus.api(`query?query=${encodeURIComponent(grafanaVariables(expr, '1m'))}`)
    if (body.status !== 'success') failures.push(`${panel}: ${body.error}`)
  }
  t.same(failures, [], 'every dashboard query runs on Prometheus')
  // A second round after the first was scraped: counters move between two samples, so rates are above 0, and
  // the panels people open first show data.
  await traffic()
  for (const title of ['Tokens per second per model', 'Time to first token per model (p50, p95, p99)', 'Requests per second by route and status', 'Memory by replica']) {
    const expr = queries.find(query => query.panel === title)?.expr ?? ''
    const result = await eventually(async () => {
      const found = await prometheus.query(grafanaVariables(expr, '1m'))
      return found.some(series => Number.isFinite(Number(series.value[1])) && Number(series.value[1]) > 0) ? found : null
    }, 10_000)
    t.ok(result, `"${title}" shows data`)
  }
})

// promtool's findings for prom-client's Node.js runtime metrics. They keep their standard names because public
// dashboards rely on them; anything outside nodejs_* and process_* must lint clean.
const KNOWN_RUNTIME_FINDINGS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
  'nodejs_eventloop_utilization_histogram',
  'nodejs_eventloop_utilization_summary'
]

t.test('promtool check metrics on a live /metrics reports nothing outside nodejs_* and process_*', async t => {
  if (requireBinary(t, 'promtool') === undefined) return
  const { baseURL, origin } = await startStack(t, { env: { DASHSCOPE_API_KEY: 'sk-one,sk-two' } })
  // Traffic first, so the labelled families have samples to lint.
  const json = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hello') })
  await json.text()
  const stream = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hello'), stream: true })
  await readEvents(stream)
  const failed = await postJson(`${baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hello'), sim: { error: 'internal_error' } })
  await failed.text()
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  t.match(metrics, /^qwen_gateway_tokens_total\{/m, 'the gateway\'s families have samples')

  const result = await runTool('promtool', ['check', 'metrics'], { input: metrics })
  const findings = (result.stdout + result.stderr).split('\n').map(line => line.trim()).filter(Boolean)
  for (const finding of findings) t.comment(finding)
  const names = findings.map(line => line.split(/\s+/)[0])
  t.same(findings.filter((_, i) => !/^(nodejs|process)_/.test(names[i])), [], 'no finding for the gateway\'s own families or the route metrics')
  t.same(names.filter(name => /^(nodejs|process)_/.test(name) && !KNOWN_RUNTIME_FINDINGS.includes(name)), [], 'the runtime findings are the known ones')
  t.equal(result.code, findings.length === 0 ? 0 : 3, 'promtool\'s exit status matches (3: lint findings)')
})

import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEPLOY } from './servers.ts'

// Two files under deploy/kubernetes/monitoring are copies: kustomize refuses files outside a kustomization's folder
// (its load restrictor), and `kubectl apply -k` has no flag to lift that. The alert rules and the dashboard are kept
// once, where docker compose uses them; these functions make the copies, kubernetes.test.ts fails while a copy
// differs, and `node test/integration/kubernetes-copies.ts --write` brings the copies up to date.

export const ALERTS = join(DEPLOY, 'prometheus', 'alerts.yml')
export const DASHBOARD = join(DEPLOY, 'grafana', 'dashboards', 'qwen-gateway.json')
export const MONITORING = join(DEPLOY, 'kubernetes', 'monitoring')
export const PROMETHEUS_RULE = join(MONITORING, 'prometheus-rule.yaml')
export const DASHBOARD_COPY = join(MONITORING, 'dashboards', 'qwen-gateway.json')

/** alerts.yml's groups as a PrometheusRule: the file's own text, comments and all, under `spec:`. */
export function prometheusRuleText (alerts = readFileSync(ALERTS, 'utf8')): string {
  const body = alerts.replace(/^(#.*\n)+/, '')
  const indented = body.split('\n').map(line => line === '' ? '' : `  ${line}`).join('\n')
  return `# Generated from deploy/prometheus/alerts.yml, the rules docker compose's Prometheus loads: edit that file, then
# run \`node test/integration/kubernetes-copies.ts --write\`. test/integration/kubernetes.test.ts fails while they differ.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: qwen-gateway
  labels:
    app.kubernetes.io/name: qwen-gateway
    # kube-prometheus-stack's Prometheus loads the rules labelled with its Helm release: match yours.
    release: kube-prometheus-stack
spec:
${indented}`
}

/** The copies as they should be, by path. */
export function expectedCopies (): Record<string, string> {
  return {
    [PROMETHEUS_RULE]: prometheusRuleText(),
    [DASHBOARD_COPY]: readFileSync(DASHBOARD, 'utf8')
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes('--write')) {
    console.error('usage: node test/integration/kubernetes-copies.ts --write')
    process.exit(2)
  }
  for (const [file, text] of Object.entries(expectedCopies())) {
    writeFileSync(file, text)
    console.log(`wrote ${file}`)
  }
}

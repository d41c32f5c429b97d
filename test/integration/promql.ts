// PromQL as the dashboard and the alert rules use it: the queries of a Grafana dashboard, and the metric names
// an expression reads. promtool checks the alert rules but knows nothing of dashboards, so the tests compare the
// names with what the gateway exports, and run each query on a real Prometheus.

/** The metric families the gateway exports (README, Metrics), by type. */
export const GATEWAY_FAMILIES: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  http_request_duration_seconds: 'histogram',
  qwen_gateway_upstream_request_duration_seconds: 'histogram',
  qwen_gateway_time_to_first_token_seconds: 'histogram',
  qwen_gateway_tokens_total: 'counter',
  qwen_gateway_upstream_errors_total: 'counter',
  qwen_gateway_streams_in_flight: 'gauge',
  qwen_gateway_requests_in_flight: 'gauge',
  qwen_gateway_upstream_key_up: 'gauge',
  qwen_gateway_upstream_key_models_set_aside: 'gauge',
  qwen_gateway_upstream_requests_waiting: 'gauge',
  qwen_gateway_upstream_retries_total: 'counter',
  qwen_gateway_stream_heartbeats_total: 'counter',
  qwen_gateway_rate_limited_total: 'counter',
  qwen_gateway_active_sessions: 'gauge',
  qwen_gateway_shared_state_up: 'gauge'
}

/** prom-client's Node.js runtime metrics the dashboard and alerts use (standard names). */
export const RUNTIME_METRICS = [
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_heap_size_used_bytes',
  'process_resident_memory_bytes',
  'process_cpu_seconds_total'
]

/** Every series name a query may read: the families above (histograms as _bucket/_sum/_count), and Prometheus' up. */
export function exportedSeriesNames (): Set<string> {
  const names = new Set<string>(['up', ...RUNTIME_METRICS])
  for (const [family, type] of Object.entries(GATEWAY_FAMILIES)) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(family + suffix)
    else names.add(family)
  }
  return names
}

/** The family a series name belongs to (histogram suffixes removed when the family is a histogram). */
export function familyOf (name: string): string {
  const base = name.replace(/_(bucket|sum|count)$/, '')
  return GATEWAY_FAMILIES[base] === 'histogram' ? base : name
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])

/** The metric names a PromQL expression reads. */
export function metricNames (expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
  const names = new Set<string>()
  for (const match of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()/g)) {
    if (!KEYWORDS.has(match[1].toLowerCase())) names.add(match[1])
  }
  return [...names]
}

export interface DashboardQuery {
  panel: string
  refId: string
  expr: string
}

/** Every PromQL target of a dashboard, rows' nested panels included. */
export function dashboardQueries (dashboard: any): DashboardQuery[] {
  const queries: DashboardQuery[] = []
  const visit = (panels: any[] = []) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr === 'string') queries.push({ panel: panel.title, refId: target.refId, expr: target.expr })
      }
      visit(panel.panels)
    }
  }
  visit(dashboard.panels)
  return queries
}

/** Grafana's variables replaced the way Grafana would: intervals by a duration, $instance by "all". */
export function grafanaVariables (expr: string, interval: string): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, interval)
    .replace(/\$\{instance(?::[a-z]+)?\}|\$instance\b|\[\[instance\]\]/g, '.*')
}

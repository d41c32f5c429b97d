import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import type { IFastifyMetrics } from 'fastify-metrics'
import { ModelLabels } from '../src/model-labels.ts'

declare module 'fastify' {
  interface FastifyInstance {
    gatewayMetrics: ReturnType<typeof createGatewayMetrics>
  }
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60]

// fastify-metrics is CommonJS with an `exports.default`; Node's ESM import hands us the whole module object.
const fastifyMetrics = fastifyMetricsModule.default

const statusClass = (status: number) => `${Math.floor(status / 100)}xx`

/**
 * Labelled children looked up by their label values: prom-client otherwise hashes a label object on every
 * observation. Label values are bounded (see src/model-labels.ts), so the cache is too.
 */
function children<T> (create: (...values: string[]) => T) {
  const cache = new Map<string, T>()
  return (...values: string[]): T => {
    const key = values.join('\u0000')
    let child = cache.get(key)
    if (child === undefined) {
      child = create(...values)
      cache.set(key, child)
    }
    return child
  }
}

/** The gateway's own metric families; every label value comes from a closed set or the bounded model list. */
function createGatewayMetrics (client: IFastifyMetrics['client'], models: ModelLabels) {
  const upstreamDuration = new client.Histogram({
    name: 'qwen_gateway_upstream_request_duration_seconds',
    help: 'Time from sending a request upstream until its answer was complete (streams: until the last event).',
    labelNames: ['api', 'model', 'status_class'],
    buckets: LATENCY_BUCKETS
  })
  const timeToFirstToken = new client.Histogram({
    name: 'qwen_gateway_time_to_first_token_seconds',
    help: 'Time from receiving a streamed request until the upstream produced its first token.',
    labelNames: ['model'],
    buckets: TTFT_BUCKETS
  })
  const tokens = new client.Counter({
    name: 'qwen_gateway_tokens_total',
    help: 'Tokens reported by the upstream, by model, client key name and type (prompt, completion, cached, reasoning).',
    labelNames: ['model', 'client', 'type']
  })
  const upstreamErrors = new client.Counter({
    name: 'qwen_gateway_upstream_errors_total',
    help: 'Upstream failures by HTTP status (or network, timeout, stream) and error type.',
    labelNames: ['status', 'error_type']
  })
  const streamsInFlight = new client.Gauge({
    name: 'qwen_gateway_streams_in_flight',
    help: 'Streamed answers currently being relayed to clients.'
  })
  const requestsInFlight = new client.Gauge({
    name: 'qwen_gateway_requests_in_flight',
    help: 'Requests currently being handled.'
  })

  let keyStates: () => Array<{ upstream: string, key: string, up: boolean, modelsSetAside: number }> = () => []
  // eslint-disable-next-line no-new -- registered by its constructor, read only through collect()
  new client.Gauge({
    name: 'qwen_gateway_upstream_key_up',
    help: 'Whether an upstream key is usable (1) or set aside as a whole (0): refused, or its account out of quota. Keys are named key-1, key-2 ...',
    labelNames: ['upstream', 'key'],
    collect () {
      for (const { upstream, key, up } of keyStates()) this.set({ upstream, key }, up ? 1 : 0)
    }
  })
  // eslint-disable-next-line no-new -- registered by its constructor, read only through collect()
  new client.Gauge({
    name: 'qwen_gateway_upstream_key_models_set_aside',
    help: 'Models an upstream key may not serve right now (access denied, rate limited, the model\'s own quota); it serves the others.',
    labelNames: ['upstream', 'key'],
    collect () {
      for (const { upstream, key, modelsSetAside } of keyStates()) this.set({ upstream, key }, modelsSetAside)
    }
  })
  let queues: () => Array<{ upstream: string, waiting: number }> = () => []
  // eslint-disable-next-line no-new -- registered by its constructor, read only through collect()
  new client.Gauge({
    name: 'qwen_gateway_upstream_requests_waiting',
    help: 'Requests waiting for a free upstream connection: above 0 only under a configured UPSTREAM_CONNECTIONS cap.',
    labelNames: ['upstream'],
    collect () {
      for (const { upstream, waiting } of queues()) this.set({ upstream }, waiting)
    }
  })
  let sharedState: (() => { store: string, up: boolean }) | null = null
  // eslint-disable-next-line no-new -- registered by its constructor, read only through collect()
  new client.Gauge({
    name: 'qwen_gateway_shared_state_up',
    help: 'Whether the store shared by the replicas answers (1) or not (0): while Redis is away, limits fail open and key cooldowns stay per replica. /health/ready stays 200 meanwhile.',
    labelNames: ['store'],
    collect () {
      if (sharedState === null) return
      const { store, up } = sharedState()
      this.set({ store }, up ? 1 : 0)
    }
  })
  let activeSessions = () => 0
  // eslint-disable-next-line no-new -- registered by its constructor, read only through collect()
  new client.Gauge({
    name: 'qwen_gateway_active_sessions',
    help: 'Conversations seen within the session window (x-session-id, user, or a digest of the prompt start).',
    collect () {
      this.set(activeSessions())
    }
  })
  const retries = new client.Counter({
    name: 'qwen_gateway_upstream_retries_total',
    help: 'Upstream attempts repeated before the first byte reached the client, by reason.',
    labelNames: ['upstream', 'reason']
  })
  const heartbeats = new client.Counter({
    name: 'qwen_gateway_stream_heartbeats_total',
    help: 'SSE keep-alive comments sent while an upstream was silent.'
  })
  const rateLimited = new client.Counter({
    name: 'qwen_gateway_rate_limited_total',
    help: 'Client requests refused by the gateway\'s own limits, by limit (requests or tokens).',
    labelNames: ['limit']
  })

  // Plain counters beside the gauges so /health can read them without going through the registry.
  const inFlight = { requests: 0, streams: 0 }

  const upstreamChild = children((...values) => upstreamDuration.labels(...values))
  const firstTokenChild = children((...values) => timeToFirstToken.labels(...values))
  const tokensChild = children((...values) => tokens.labels(...values))

  return {
    models,
    inFlight: () => ({ ...inFlight }),
    requestStarted () {
      inFlight.requests++
      requestsInFlight.inc()
    },
    requestEnded () {
      inFlight.requests--
      requestsInFlight.dec()
    },
    streamStarted () {
      inFlight.streams++
      streamsInFlight.inc()
    },
    streamEnded () {
      inFlight.streams--
      streamsInFlight.dec()
    },
    upstream (api: string, model: string, status: number, seconds: number) {
      upstreamChild(api, models.label(model), statusClass(status)).observe(seconds)
    },
    firstToken (model: string, seconds: number) {
      firstTokenChild(models.label(model)).observe(seconds)
    },
    tokens (model: string, client: string, counts: { prompt: number, completion: number, cached: number, reasoning: number }) {
      const label = models.label(model)
      if (counts.prompt) tokensChild(label, client, 'prompt').inc(counts.prompt)
      if (counts.completion) tokensChild(label, client, 'completion').inc(counts.completion)
      if (counts.cached) tokensChild(label, client, 'cached').inc(counts.cached)
      if (counts.reasoning) tokensChild(label, client, 'reasoning').inc(counts.reasoning)
    },
    /** Read when Prometheus scrapes: whether Redis (or the in-memory store) answers. */
    watchSharedState (provider: () => { store: string, up: boolean }) {
      sharedState = provider
    },
    /** Sessions are counted when Prometheus scrapes, from the tracker's sliding window. */
    watchSessions (count: () => number) {
      activeSessions = count
    },
    /** Read when Prometheus scrapes: the undici pools know their own queues. */
    watchQueues (provider: typeof queues) {
      queues = provider
    },
    /** Key states are read when Prometheus scrapes, so a cooldown that simply ran out shows as up again. */
    watchKeys (provider: typeof keyStates) {
      keyStates = provider
    },
    retry (upstream: string, reason: string) {
      retries.inc({ upstream, reason })
    },
    heartbeat () {
      heartbeats.inc()
    },
    rateLimited (limit: 'requests' | 'tokens') {
      rateLimited.inc({ limit })
    },
    upstreamError (status: number | 'network' | 'timeout' | 'stream', errorType: string) {
      upstreamErrors.inc({ status: String(status), error_type: errorType })
    }
  }
}

export default fp(async function metrics (fastify) {
  await fastify.register(fastifyMetrics, {
    endpoint: '/metrics',
    // One registry per process: a second app in the same process (tests) starts from a clean slate.
    clearRegisterOnInit: true,
    defaultMetrics: { enabled: true },
    routeMetrics: {
      // The summary's default name breaks Prometheus naming rules, and a histogram answers the same questions.
      enabled: { histogram: true, summary: false },
      registeredRoutesOnly: true,
      groupStatusCodes: false,
      routeBlacklist: ['/metrics'],
      overrides: {
        histogram: { name: 'http_request_duration_seconds', help: 'HTTP request duration by route template, method and status.', buckets: LATENCY_BUCKETS }
      }
    }
  })
  // fastify-metrics registers its summary even when it is switched off; an empty family would still be exported.
  fastify.metrics.client.register.removeSingleMetric('http_request_summary_seconds')
  const models = new ModelLabels([...fastify.config.MODELS, ...(fastify.config.topology.declaredModels ?? [])])
  fastify.decorate('gatewayMetrics', createGatewayMetrics(fastify.metrics.client, models))
}, { name: 'metrics', dependencies: ['config'] })

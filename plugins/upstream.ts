import fp from 'fastify-plugin'
import { createUpstreamClient, type UpstreamClient } from '../src/upstream/client.ts'
import { createDispatcher } from '../src/upstream/dispatch.ts'
import type { PenaltyEvent } from '../src/state/shared-state.ts'
import { KEY_SCOPE, type KeyEntry, type Penalty } from '../src/upstream/key-ring.ts'

declare module 'fastify' {
  interface FastifyInstance {
    upstreams: Upstreams
  }
}

export type Upstreams = ReturnType<typeof registry>

function registry (list: UpstreamClient[], dispatch: ReturnType<typeof createDispatcher>) {
  return {
    list,
    /** The first upstream: models without a declared route go there, and /v1/models asks it. */
    primary: list[0],
    dispatch
  }
}

/**
 * Every upstream the topology names, each with its pool and keys; the dispatcher that retries across keys and
 * fallbacks; key state shared with other replicas through the shared state (Redis) and shown in metrics.
 */
export default fp(async function upstream (fastify) {
  const { config, sharedState, gatewayMetrics } = fastify
  const clients: UpstreamClient[] = []
  // Once per upstream and half-minute at most: under a sustained queue, one line says it, not every request.
  const warnedAt = new Map<string, number>()
  const warnSaturated = (upstream: string, connections: number) => {
    const now = Date.now()
    if (now - (warnedAt.get(upstream) ?? -Infinity) < 30_000) return
    warnedAt.set(upstream, now)
    fastify.log.warn({ upstream, connections }, `every one of the ${connections} upstream connections (UPSTREAM_CONNECTIONS) is busy: new requests wait for one (qwen_gateway_upstream_requests_waiting); raise or unset UPSTREAM_CONNECTIONS`)
  }
  for (const spec of config.topology.upstreams) {
    const client = createUpstreamClient(spec, {
      connections: config.UPSTREAM_CONNECTIONS,
      connectTimeout: config.UPSTREAM_CONNECT_TIMEOUT_MS,
      headersTimeout: config.UPSTREAM_HEADERS_TIMEOUT_MS,
      bodyTimeout: config.UPSTREAM_BODY_TIMEOUT_MS,
      onSaturated: warnSaturated
    }, {
      maxCooldownMs: config.KEY_COOLDOWN_MAX_MS,
      disableMs: config.KEY_DISABLE_MS,
      onChange: (entry: KeyEntry, scope: string, penalty: Penalty | null, clearedBefore: number) => {
        if (penalty) {
          fastify.log.warn({
            upstream: spec.name,
            key: entry.label,
            model: scope === KEY_SCOPE ? undefined : scope,
            reason: penalty.reason,
            retryInMs: Math.max(0, penalty.until - Date.now()),
            upstreamMessage: penalty.refusal?.message
          }, scope === KEY_SCOPE ? 'upstream key set aside' : 'upstream key set aside for one model')
        }
        sharedState.publishPenalty({ id: `${spec.name}:${entry.fingerprint}:${scope}`, penalty, clearedBefore })
      }
    })
    clients.push(client)
  }

  // Penalties other replicas recorded: those still remembered at start, then each one as it happens.
  const byName = new Map(clients.map(client => [client.name, client]))
  const applyRemote = ({ id, penalty, clearedBefore }: PenaltyEvent) => {
    const [name, fingerprint] = id.split(':', 2)
    const scope = id.slice(name.length + fingerprint.length + 2)
    byName.get(name)?.keys.apply(fingerprint, scope, penalty, clearedBefore)
  }
  const keys = clients.flatMap(client => client.keys.entries.map(entry => `${client.name}:${entry.fingerprint}`))
  for (const event of await sharedState.loadPenalties(keys)) applyRemote(event)
  sharedState.onPenalty(applyRemote)

  gatewayMetrics.watchQueues(() => clients.map(client => ({ upstream: client.name, waiting: client.waiting() })))
  gatewayMetrics.watchKeys(() => clients.flatMap(client =>
    client.keys.entries.map(entry => ({
      upstream: client.name,
      key: entry.label,
      up: client.keys.state(entry) === 'healthy',
      modelsSetAside: [...entry.penalties.keys()].filter(scope => scope !== KEY_SCOPE && client.keys.active(entry, scope) !== null).length
    }))))

  const dispatch = createDispatcher(byName, {
    maxAttempts: config.UPSTREAM_MAX_ATTEMPTS,
    windowMs: config.UPSTREAM_RETRY_WINDOW_MS,
    onRetry: (name, reason) => gatewayMetrics.retry(name, reason)
  })
  fastify.decorate('upstreams', registry(clients, dispatch))
  fastify.addHook('onClose', async () => {
    await Promise.all(clients.map(client => client.close()))
  })
}, { name: 'upstream', dependencies: ['config', 'metrics', 'shared-state'] })

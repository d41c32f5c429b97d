import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../src/errors.ts'
import type { Model } from '../src/schemas/models.ts'

declare module 'fastify' {
  interface FastifyInstance {
    modelCatalog: ReturnType<typeof createModelCatalog>
  }
}

interface CatalogOptions {
  /** GET /models on the primary upstream, through the dispatcher (keys, cooldowns, retries); throws on failure. */
  fetchModels: () => Promise<Dispatcher.ResponseData>
  configured: string[]
  /** Models the GATEWAY_CONFIG file declares (ids and aliases): served as they are, without asking upstream. */
  declared: string[] | null
  ttlMs: number
  /** Called with the upstream's ids so metrics can label them. */
  learn: (ids: string[]) => void
  log: { warn: (obj: object, msg: string) => void }
  now?: () => number
}

// A failed or empty upstream list is remembered briefly too, so a dead upstream is not asked on every call.
const RETRY_AFTER_FAILURE_MS = 10_000

/**
 * The models clients may use: those the GATEWAY_CONFIG file declares; else the primary upstream's own /models,
 * cached for `ttlMs`, with one request in flight at most; when it has no list (or none it will show), MODELS.
 */
export function createModelCatalog (options: CatalogOptions) {
  const now = options.now ?? Date.now
  const fallback: Model[] = options.configured.map(id => ({ id, object: 'model', created: 0, owned_by: 'qwen-gateway' }))
  const declared = options.declared?.map(id => ({ id, object: 'model' as const, created: 0, owned_by: 'qwen-gateway' })) ?? null
  let cached: { models: Model[], expires: number } | null = null
  let inflight: Promise<Model[]> | null = null

  async function fetchUpstream (): Promise<Model[] | null> {
    const response = await options.fetchModels()
    const body = await response.body.json() as { data?: unknown }
    if (!Array.isArray(body.data)) return null
    const models = body.data
      .filter((item): item is { id: string } => typeof item?.id === 'string')
      .map(item => toModel(item))
    return models.length > 0 ? models : null
  }

  async function refresh (): Promise<Model[]> {
    let models: Model[] | null = null
    try {
      models = await fetchUpstream()
    } catch (error) {
      const detail = error instanceof GatewayError ? { status: error.statusCode, message: error.message } : { err: error }
      options.log.warn(detail, 'upstream /models failed; serving configured MODELS')
    }
    if (models) options.learn(models.map(model => model.id))
    cached = { models: models ?? fallback, expires: now() + (models ? options.ttlMs : Math.min(options.ttlMs, RETRY_AFTER_FAILURE_MS)) }
    return cached.models
  }

  async function list (): Promise<Model[]> {
    if (declared) return declared
    if (cached && cached.expires > now()) return cached.models
    inflight ??= refresh().finally(() => { inflight = null })
    return inflight
  }

  async function find (id: string): Promise<Model | undefined> {
    return (await list()).find(model => model.id === id)
  }

  return { list, find }
}

function toModel (item: { id: string, created?: unknown, owned_by?: unknown }): Model {
  return {
    id: item.id,
    object: 'model',
    created: Number.isInteger(item.created) ? item.created as number : 0,
    owned_by: typeof item.owned_by === 'string' ? item.owned_by : 'system'
  }
}

export default fp(async function modelCatalog (fastify) {
  fastify.decorate('modelCatalog', createModelCatalog({
    fetchModels: async () => (await fastify.upstreams.dispatch({
      targets: [{ upstream: fastify.upstreams.primary.name, model: '' }],
      call: { method: 'GET', path: '/models', requestId: crypto.randomUUID() }
    })).response,
    configured: fastify.config.MODELS,
    declared: fastify.config.topology.declaredModels,
    ttlMs: fastify.config.MODELS_CACHE_TTL_MS,
    learn: ids => fastify.gatewayMetrics.models.learn(ids),
    log: fastify.log
  }))
}, { name: 'model-catalog', dependencies: ['upstream', 'metrics'] })

import fp from 'fastify-plugin'
import type { Model } from '../src/schemas/models.ts'
import type { Upstream } from './upstream.ts'

declare module 'fastify' {
  interface FastifyInstance {
    modelCatalog: ReturnType<typeof createModelCatalog>
  }
}

interface CatalogOptions {
  upstream: Upstream
  configured: string[]
  ttlMs: number
  /** Called with the upstream's ids so metrics can label them. */
  learn: (ids: string[]) => void
  log: { warn: (obj: object, msg: string) => void }
  now?: () => number
}

// A failed or empty upstream list is remembered briefly too, so a dead upstream is not asked on every call.
const RETRY_AFTER_FAILURE_MS = 10_000

/**
 * The models clients may use: the upstream's own /models, cached for `ttlMs`, with one request in flight at
 * most; when the upstream has no list (or none it will show), the configured MODELS.
 */
export function createModelCatalog (options: CatalogOptions) {
  const now = options.now ?? Date.now
  const fallback: Model[] = options.configured.map(id => ({ id, object: 'model', created: 0, owned_by: 'qwen-gateway' }))
  let cached: { models: Model[], expires: number } | null = null
  let inflight: Promise<Model[]> | null = null

  async function fetchUpstream (): Promise<Model[] | null> {
    const response = await options.upstream.request({ method: 'GET', path: '/models', requestId: crypto.randomUUID() })
    if (response.statusCode !== 200) {
      const error = await options.upstream.errorFrom(response)
      options.log.warn({ status: response.statusCode, message: error.message }, 'upstream /models failed; serving configured MODELS')
      return null
    }
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
      options.log.warn({ err: error }, 'upstream /models unreachable; serving configured MODELS')
    }
    if (models) options.learn(models.map(model => model.id))
    cached = { models: models ?? fallback, expires: now() + (models ? options.ttlMs : Math.min(options.ttlMs, RETRY_AFTER_FAILURE_MS)) }
    return cached.models
  }

  async function list (): Promise<Model[]> {
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
    upstream: fastify.upstream,
    configured: fastify.config.MODELS,
    ttlMs: fastify.config.MODELS_CACHE_TTL_MS,
    learn: ids => fastify.gatewayMetrics.models.learn(ids),
    log: fastify.log
  }))
}, { name: 'model-catalog', dependencies: ['upstream', 'metrics'] })

import { readFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'

// What environment variables cannot express lives in an optional file (GATEWAY_CONFIG, YAML or JSON): several
// upstreams, which models each serves, aliases, ordered fallbacks, and named client keys with their own limits.

const Name = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })
const BaseUrl = Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s?#]*$' })

const UpstreamFileSchema = Type.Object({
  name: Name,
  base_url: BaseUrl,
  api_keys: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  /** Name of an environment variable holding the keys, comma-separated: keeps secrets out of the file. */
  api_keys_env: Type.Optional(Type.String({ minLength: 1 })),
  /** false for servers without tool calling: the gateway then speaks an XML tool protocol with the model. */
  native_tools: Type.Optional(Type.Boolean()),
  /** Inputs per /embeddings call when this upstream is a model's primary target (DashScope allows 10). */
  embeddings_batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 2048 }))
}, { additionalProperties: false })

const TargetFileSchema = Type.Object({
  upstream: Name,
  /** The id this upstream knows the model by, when it differs from the id clients use. */
  model: Type.Optional(Type.String({ minLength: 1 }))
}, { additionalProperties: false })

const ModelFileSchema = Type.Object({
  id: Type.String({ minLength: 1 }),
  aliases: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  /** Tried in order: the first is the primary, the rest are fallbacks. */
  targets: Type.Array(TargetFileSchema, { minItems: 1 }),
  /** Show reasoning as <think>…</think> in content, for clients that read only content. */
  think_tags: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

const Limit = Type.Integer({ minimum: 0 })

const ClientFileSchema = Type.Object({
  name: Name,
  key: Type.Optional(Type.String({ minLength: 8 })),
  key_env: Type.Optional(Type.String({ minLength: 1 })),
  requests_per_minute: Type.Optional(Limit),
  tokens_per_minute: Type.Optional(Limit)
}, { additionalProperties: false })

export const GatewayFileSchema = Type.Object({
  upstreams: Type.Optional(Type.Array(UpstreamFileSchema, { minItems: 1 })),
  models: Type.Optional(Type.Array(ModelFileSchema)),
  clients: Type.Optional(Type.Array(ClientFileSchema))
}, { additionalProperties: false })

export type GatewayFile = Static<typeof GatewayFileSchema>

export interface UpstreamSpec {
  name: string
  baseUrl: string
  keys: string[]
  nativeTools: boolean
  /** Inputs per embeddings call; unset means EMBEDDINGS_BATCH_SIZE. */
  embeddingsBatchSize?: number
}

export interface Target {
  upstream: string
  model: string
}

export interface ClientSpec {
  name: string
  key: string
  requestsPerMinute: number
  tokensPerMinute: number
}

export interface Topology {
  upstreams: UpstreamSpec[]
  /** Model id or alias → ordered targets. Models not listed go to the first upstream under their own id. */
  routes: Map<string, Target[]>
  /** Ids and aliases the file declares, served by /v1/models; null when the file declares none. */
  declaredModels: string[] | null
  /** Aliases ending in `*` (`claude-*`): a model id starting with the prefix takes the targets. Longest prefix first. */
  wildcards: Array<{ prefix: string, targets: Target[] }>
  /** Model ids and aliases whose reasoning is shown as <think> tags. */
  thinkTagModels: Set<string>
  clients: ClientSpec[]
}

export interface TopologyDefaults {
  baseUrl: string
  keys: string[]
  clientKeys: string[]
  requestsPerMinute: number
  tokensPerMinute: number
  /** MODEL_ALIASES: `alias=model` pairs; an alias may end in `*`. */
  aliases: string[]
}

export class TopologyError extends Error {
  override name = 'TopologyError'
}

/** A comma-separated setting as a list, blanks dropped. */
export const splitList = (value: string | undefined) => (value ?? '').split(',').map(item => item.trim()).filter(Boolean)

export function readGatewayFile (path: string): GatewayFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new TopologyError(`GATEWAY_CONFIG: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  let data: unknown
  try {
    data = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text)
  } catch (error) {
    throw new TopologyError(`GATEWAY_CONFIG: ${path} is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`)
  }
  const problem = Value.Errors(GatewayFileSchema, data ?? {}).First()
  if (problem) throw new TopologyError(`GATEWAY_CONFIG: ${path}: ${problem.path || '/'} ${problem.message.toLowerCase()}`)
  return (data ?? {}) as GatewayFile
}

/** Combines the file (if any) with the environment's defaults into the routing the gateway uses. */
export function buildTopology (file: GatewayFile, defaults: TopologyDefaults, env: Record<string, string | undefined>): Topology {
  const fail = (message: string): never => { throw new TopologyError(`GATEWAY_CONFIG: ${message}`) }
  const upstreams: UpstreamSpec[] = file.upstreams
    ? file.upstreams.map(upstream => ({
      name: upstream.name,
      baseUrl: upstream.base_url.replace(/\/+$/, ''),
      keys: [...(upstream.api_keys ?? []), ...splitList(upstream.api_keys_env ? env[upstream.api_keys_env] : undefined)],
      nativeTools: upstream.native_tools ?? true,
      embeddingsBatchSize: upstream.embeddings_batch_size
    }))
    : [{ name: 'dashscope', baseUrl: defaults.baseUrl, keys: defaults.keys, nativeTools: true }]
  const names = new Set<string>()
  for (const upstream of upstreams) {
    if (names.has(upstream.name)) fail(`upstream name "${upstream.name}" is used twice`)
    names.add(upstream.name)
  }

  const routes = new Map<string, Target[]>()
  const wildcards: Topology['wildcards'] = []
  const thinkTagModels = new Set<string>()
  const addAlias = (alias: string, targets: Target[]) => {
    if (alias.endsWith('*')) wildcards.push({ prefix: alias.slice(0, -1), targets })
    else routes.set(alias, targets)
  }
  for (const model of file.models ?? []) {
    const targets = model.targets.map(target => {
      if (!names.has(target.upstream)) fail(`model "${model.id}" names upstream "${target.upstream}", which is not among upstreams`)
      return { upstream: target.upstream, model: target.model ?? model.id }
    })
    for (const id of [model.id, ...(model.aliases ?? [])]) {
      if (routes.has(id) || wildcards.some(wildcard => `${wildcard.prefix}*` === id)) fail(`model id or alias "${id}" is declared twice`)
      addAlias(id, targets)
      if (model.think_tags) thinkTagModels.add(id)
    }
  }
  // MODEL_ALIASES comes after the file: the file's own aliases win, and an alias may point at a declared model.
  for (const pair of defaults.aliases) {
    const match = /^([^=\s]+)=([^=\s]+)$/.exec(pair)
    if (!match) throw new TopologyError(`MODEL_ALIASES: "${pair}" is not alias=model (for example claude-*=qwen3-coder-plus)`)
    const [, alias, model] = match
    if (routes.has(alias) || wildcards.some(wildcard => `${wildcard.prefix}*` === alias)) continue
    addAlias(alias, routes.get(model) ?? [{ upstream: upstreams[0].name, model }])
  }
  wildcards.sort((a, b) => b.prefix.length - a.prefix.length)

  const clients: ClientSpec[] = defaults.clientKeys.map((key, i) => ({
    name: `key-${i + 1}`,
    key,
    requestsPerMinute: defaults.requestsPerMinute,
    tokensPerMinute: defaults.tokensPerMinute
  }))
  for (const client of file.clients ?? []) {
    const key = client.key ?? (client.key_env ? env[client.key_env]?.trim() : undefined)
    if (!key) fail(`client "${client.name}" needs "key", or "key_env" naming a variable that is set`)
    if (clients.some(known => known.name === client.name)) fail(`client name "${client.name}" is used twice`)
    clients.push({
      name: client.name,
      key: key!,
      requestsPerMinute: client.requests_per_minute ?? defaults.requestsPerMinute,
      tokensPerMinute: client.tokens_per_minute ?? defaults.tokensPerMinute
    })
  }
  const declaredModels = file.models ? [...routes.keys()] : null
  return { upstreams, routes, wildcards, declaredModels, thinkTagModels, clients }
}

/**
 * The ordered targets for a model: its declared route or alias, else the longest `prefix*` alias it starts with
 * (Claude Code asks for `claude-opus-…`, `claude-haiku-…`), else the first upstream under the same id.
 */
export function targetsFor (topology: Topology, model: string): Target[] {
  const route = topology.routes.get(model)
  if (route) return route
  for (const wildcard of topology.wildcards) if (model.startsWith(wildcard.prefix)) return wildcard.targets
  return [{ upstream: topology.upstreams[0].name, model }]
}

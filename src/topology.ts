import { readFileSync } from 'node:fs'
import { Type, type Static, type TObject } from '@sinclair/typebox'
import { Value, ValueErrorType } from '@sinclair/typebox/value'
import { createRequire } from 'node:module'

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

// The YAML parser is loaded only for a GATEWAY_CONFIG file: a gateway configured by its environment never needs it.
const parseYaml = (text: string): unknown => (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text)

/** The file's contents, checked against GatewayFileSchema; a TopologyError names the file and what is wrong where. */
export function readGatewayFile (path: string): GatewayFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new TopologyError(`GATEWAY_CONFIG: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  const json = /\.json$/i.test(path)
  let data: unknown
  try {
    data = json ? (text.trim() === '' ? null : JSON.parse(text)) : parseYaml(text)
  } catch (error) {
    throw new TopologyError(`GATEWAY_CONFIG: ${path} is not valid ${json ? 'JSON' : 'YAML'}: ${parseErrorText(error as Error, text)}`)
  }
  // An empty file (or one of comments only) is more likely a mistake (the wrong file, a failed template) than a wish.
  if (data === null || data === undefined) {
    throw new TopologyError(`GATEWAY_CONFIG: ${path} is empty${json ? '' : ' (or only comments)'}: it needs upstreams, models or clients; unset GATEWAY_CONFIG to use the environment alone`)
  }
  const errors = [...Value.Errors(GatewayFileSchema, data)]
  // A misspelt property also shows as the real one missing: the misspelling is the one worth naming.
  const problem = errors.find(error => error.type === ValueErrorType.ObjectAdditionalProperties) ?? errors[0]
  if (problem?.type === ValueErrorType.ObjectAdditionalProperties) {
    const cut = problem.path.lastIndexOf('/')
    const name = problem.path.slice(cut + 1).replace(/~1/g, '/').replace(/~0/g, '~')
    const known = Object.keys((problem.schema as TObject).properties)
    throw new TopologyError(`GATEWAY_CONFIG: ${path}: ${problem.path.slice(0, cut) || '/'}: unknown property ${name} (${suggest(name, known)})`)
  }
  if (problem) throw new TopologyError(`GATEWAY_CONFIG: ${path}: ${problem.path || '/'} ${problem.message.toLowerCase()}`)
  return data as GatewayFile
}

/**
 * A parse error's message with the lines that show where: the yaml package's own code frame, or one made for
 * JSON.parse's "(line L column C)"; indented under the first line.
 */
function parseErrorText (error: Error, text: string): string {
  let [first, ...frame] = error.message.replace(/\n+$/, '').split('\n')
  const at = /(?: at position \d+)? \(line (\d+) column (\d+)\)$/.exec(first)
  if (frame.length === 0 && at) {
    first = `${first.slice(0, at.index)} at line ${at[1]}, column ${at[2]}:`
    frame = [text.split(/\r?\n/)[Number(at[1]) - 1] ?? '', `${' '.repeat(Number(at[2]) - 1)}^`]
  }
  if (frame[0] === '') frame.shift()
  return [first, ...frame.map(line => line === '' ? '' : `    ${line}`)].join('\n')
}

/** "did you mean X?" for the known name nearest by edit distance, else the list of known names. */
function suggest (name: string, known: string[]): string {
  let best = ''
  let bestDistance = Infinity
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance]
  }
  return bestDistance <= 2 && bestDistance * 2 < best.length
    ? `did you mean ${best}?`
    : `known properties: ${known.join(', ')}`
}

/** Edits (insert, delete, replace, swap two neighbours) that turn a into b. */
export function editDistance (a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : j === 0 ? i : 0))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

const ENDPOINT = /\/(chat\/completions|completions|embeddings|models|responses|messages)$/

/**
 * A base URL without trailing slashes, and without an endpoint pasted at its end (…/v1/chat/completions is …/v1):
 * `endpoint` says which one was cut, for the warning.
 */
export function trimBaseUrl (url: string): { url: string, endpoint?: string } {
  const bare = url.replace(/\/+$/, '')
  const match = ENDPOINT.exec(bare)
  if (!match) return { url: bare }
  return { url: bare.slice(0, match.index).replace(/\/+$/, ''), endpoint: match[0] }
}

/** Combines the file (if any) with the environment's defaults into the routing the gateway uses. */
export function buildTopology (
  file: GatewayFile,
  defaults: TopologyDefaults,
  env: Record<string, string | undefined>,
  /** Told, in one line each, what was accepted but corrected (an endpoint at the end of a base_url). */
  warn: (message: string) => void = () => {}
): Topology {
  const fail = (message: string): never => { throw new TopologyError(`GATEWAY_CONFIG: ${message}`) }
  const baseUrlOf = (upstream: { name: string, base_url: string }) => {
    const { url, endpoint } = trimBaseUrl(upstream.base_url)
    if (endpoint) warn(`GATEWAY_CONFIG: upstream "${upstream.name}": base_url ends with ${endpoint}, an endpoint: using ${url}`)
    return url
  }
  const upstreams: UpstreamSpec[] = file.upstreams
    ? file.upstreams.map(upstream => ({
      name: upstream.name,
      baseUrl: baseUrlOf(upstream),
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

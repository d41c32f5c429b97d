import { BlockList, isIP } from 'node:net'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parseMaxOutputTokens } from './model-limits.ts'
import { buildTopology, readGatewayFile, splitList, TopologyError, trimBaseUrl, type Topology } from './topology.ts'

// Every setting comes from the environment and is checked here, once, at start.
// Nothing else in the gateway reads process.env.

const integer = (min: number, max: number, fallback: number, expect: string) =>
  Type.Integer({ minimum: min, maximum: max, default: fallback, expect })

const csv = (fallback: string, expect: string) => Type.String({ default: fallback, expect })

const ConfigSchema = Type.Object({
  PORT: integer(0, 65535, 3000, 'an integer port from 0 to 65535'),
  // Empty means: 0.0.0.0 when client keys are configured, loopback when they are not (see listenHost).
  HOST: Type.String({ default: '', expect: 'a host name or IP address' }),
  GATEWAY_ALLOW_OPEN: Type.Boolean({ default: false, expect: 'true or false' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(level => Type.Literal(level)),
    { default: 'info', expect: 'one of fatal, error, warn, info, debug, trace, silent' }
  ),
  DASHSCOPE_API_KEY: csv('', 'one API key, or several separated by commas'),
  DASHSCOPE_BASE_URL: Type.String({
    default: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1',
    pattern: '^https?://[^\\s/?#]+[^\\s?#]*$',
    expect: 'an http(s) base URL such as https://dashscope-intl.aliyuncs.com/compatible-mode/v1'
  }),
  GATEWAY_API_KEYS: csv('', 'client API keys separated by commas'),
  // Codex CLI and Claude Code send 40 to 50 KB for a one-line prompt, and long agent conversations reach megabytes.
  BODY_LIMIT: integer(1024, 1024 ** 3, 32 * 1024 * 1024, 'a size in bytes from 1024 to 1073741824'),
  // Out of the box Claude Code's claude-* names reach a coder model, so ANTHROPIC_BASE_URL is all it needs.
  MODEL_ALIASES: csv('claude-*=qwen3-coder-plus', 'alias=model pairs separated by commas, an alias may end in *'),
  // Per model id (a trailing * matches a prefix): the most output tokens it can give, used when a request sets none
  // and as the ceiling a request's max_tokens is clamped to on /v1/messages and /v1/responses.
  MODEL_MAX_OUTPUT_TOKENS: csv('', 'model=tokens pairs separated by commas, a model may end in *'),
  RESPONSE_STORE_TTL_SECONDS: integer(60, 30 * 86_400, 86_400, 'seconds from 60 to 2592000'),
  RESPONSE_STORE_MAX_MB: integer(1, 65_536, 256, 'megabytes of stored responses kept in memory (without Redis), from 1 to 65536'),
  // Signs reasoning handed to clients as encrypted_content; empty derives one from the upstream keys (same on every replica).
  REASONING_SECRET: Type.String({ default: '', expect: 'a secret string' }),
  EMBEDDINGS_BATCH_SIZE: integer(1, 2048, 10, 'inputs per upstream embeddings call, from 1 to 2048 (DashScope allows 10)'),
  EMBEDDINGS_CONCURRENCY: integer(1, 64, 4, 'parallel upstream embeddings calls per request, from 1 to 64'),
  MODELS: csv(
    'qwen3-max,qwen-plus,qwen-flash,qwen-turbo,qwen3-coder-plus,qwen3-coder-flash,qwq-plus',
    'model ids separated by commas'
  ),
  MODELS_CACHE_TTL_MS: integer(0, 86_400_000, 60_000, 'milliseconds from 0 to 86400000'),
  UPSTREAM_CONNECT_TIMEOUT_MS: integer(1, 600_000, 10_000, 'milliseconds from 1 to 600000'),
  UPSTREAM_HEADERS_TIMEOUT_MS: integer(1, 3_600_000, 300_000, 'milliseconds from 1 to 3600000'),
  UPSTREAM_BODY_TIMEOUT_MS: integer(1, 3_600_000, 300_000, 'milliseconds from 1 to 3600000'),
  // An LLM stream holds its connection for its whole life: a cap queues streams, so there is none by default.
  UPSTREAM_CONNECTIONS: integer(0, 65_536, 0, 'an integer from 0 (no limit) to 65536'),
  MAX_FRAME_BYTES: integer(1024, 256 * 1024 ** 2, 4 * 1024 ** 2, 'a size in bytes from 1024 to 268435456'),
  TRUST_PROXY: Type.Boolean({ default: false, expect: 'true or false' }),
  SHUTDOWN_GRACE_MS: integer(0, 3_600_000, 30_000, 'milliseconds from 0 to 3600000'),
  GATEWAY_CONFIG: Type.String({ default: '', expect: 'the path of a YAML or JSON file' }),
  RATE_LIMIT_RPM: integer(0, 10_000_000, 0, 'requests per minute per client key, 0 for no limit'),
  RATE_LIMIT_TPM: integer(0, 1_000_000_000, 0, 'tokens per minute per client key, 0 for no limit'),
  RATE_LIMIT_DEFAULT_MAX_TOKENS: integer(1, 1_000_000, 4096, 'output tokens reserved for a request without max_tokens, from 1 to 1000000'),
  REDIS_URL: Type.String({ default: '', pattern: '^(rediss?://.+)?$', expect: 'a redis:// or rediss:// URL' }),
  HEARTBEAT_INTERVAL_MS: integer(50, 600_000, 15_000, 'milliseconds from 50 to 600000'),
  UPSTREAM_MAX_ATTEMPTS: integer(1, 10, 3, 'an integer from 1 to 10'),
  UPSTREAM_RETRY_WINDOW_MS: integer(0, 600_000, 30_000, 'milliseconds from 0 to 600000'),
  KEY_COOLDOWN_MAX_MS: integer(100, 3_600_000, 60_000, 'milliseconds from 100 to 3600000'),
  KEY_DISABLE_MS: integer(1000, 86_400_000, 600_000, 'milliseconds from 1000 to 86400000'),
  LOAD_SHED_EVENT_LOOP_DELAY_MS: integer(0, 60_000, 1000, 'milliseconds, 0 to switch load shedding off'),
  SESSION_WINDOW_MS: integer(1000, 86_400_000, 1_800_000, 'milliseconds from 1000 to 86400000')
})

type RawConfig = Static<typeof ConfigSchema>

export interface Config extends Omit<RawConfig, 'DASHSCOPE_API_KEY' | 'GATEWAY_API_KEYS' | 'MODELS' | 'MODEL_ALIASES' | 'MODEL_MAX_OUTPUT_TOKENS'> {
  DASHSCOPE_API_KEY: string[]
  GATEWAY_API_KEYS: string[]
  MODELS: string[]
  MODEL_ALIASES: string[]
  MODEL_MAX_OUTPUT_TOKENS: string[]
  /** Upstreams, model routes and client keys: from GATEWAY_CONFIG when set, else from the variables above. */
  topology: Topology
  /** What was accepted but corrected (a base URL that ended with an endpoint), one line each: logged at start. */
  warnings: string[]
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Reads the gateway's settings from an environment object. Unset and empty variables take
 * their defaults; the first invalid one throws a ConfigError naming it, in one line.
 */
export function loadConfig (env: Record<string, string | undefined> = {}): Config {
  const input: Record<string, unknown> = {}
  for (const name of Object.keys(ConfigSchema.properties)) {
    const value = env[name]?.trim()
    if (value) input[name] = value
  }
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, input))
  const problem = Value.Errors(ConfigSchema, converted).First()
  if (problem) throw new ConfigError(describeProblem(problem.path, input))

  const raw = converted as RawConfig
  const warnings: string[] = []
  const baseUrl = trimBaseUrl(raw.DASHSCOPE_BASE_URL)
  if (baseUrl.endpoint) warnings.push(`DASHSCOPE_BASE_URL ends with ${baseUrl.endpoint}, an endpoint: using ${baseUrl.url}`)
  const config = {
    ...raw,
    DASHSCOPE_BASE_URL: baseUrl.url,
    DASHSCOPE_API_KEY: splitList(raw.DASHSCOPE_API_KEY),
    GATEWAY_API_KEYS: splitList(raw.GATEWAY_API_KEYS),
    MODELS: splitList(raw.MODELS),
    MODEL_ALIASES: splitList(raw.MODEL_ALIASES),
    MODEL_MAX_OUTPUT_TOKENS: splitList(raw.MODEL_MAX_OUTPUT_TOKENS)
  }
  try {
    parseMaxOutputTokens(config.MODEL_MAX_OUTPUT_TOKENS)
  } catch (error) {
    throw new ConfigError(`Invalid configuration: ${(error as Error).message}`)
  }
  try {
    const file = config.GATEWAY_CONFIG ? readGatewayFile(config.GATEWAY_CONFIG) : {}
    const topology = buildTopology(file, {
      baseUrl: config.DASHSCOPE_BASE_URL,
      keys: config.DASHSCOPE_API_KEY,
      clientKeys: config.GATEWAY_API_KEYS,
      requestsPerMinute: config.RATE_LIMIT_RPM,
      tokensPerMinute: config.RATE_LIMIT_TPM,
      aliases: config.MODEL_ALIASES
    }, env, warning => warnings.push(warning))
    return { ...config, HOST: listenHost(config.HOST, topology.clients.length > 0, config.GATEWAY_ALLOW_OPEN), topology, warnings }
  } catch (error) {
    if (error instanceof TopologyError) throw new ConfigError(`Invalid configuration: ${error.message}`)
    throw error
  }
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/** Whether only this machine can reach an address the gateway listens on. */
export function isLoopback (host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1')
  if (bare === 'localhost') return true
  const family = isIP(bare)
  if (family === 0) return false
  return LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6') || (family === 6 && /^::ffff:127\./i.test(bare))
}

/**
 * Where to listen. Without client keys anyone who reaches the port spends the operator's upstream credit, so the
 * default is loopback, and a wider address needs the explicit GATEWAY_ALLOW_OPEN=true.
 */
function listenHost (host: string, hasClientKeys: boolean, allowOpen: boolean): string {
  if (host === '') return hasClientKeys ? '0.0.0.0' : '127.0.0.1'
  if (!hasClientKeys && !allowOpen && !isLoopback(host)) {
    throw new ConfigError(`Invalid configuration: HOST=${JSON.stringify(host)} would open the gateway to the network without client keys; set GATEWAY_API_KEYS, or GATEWAY_ALLOW_OPEN=true to run an open gateway on purpose`)
  }
  return host
}

function describeProblem (path: string, input: Record<string, unknown>): string {
  const name = path.split('/')[1] ?? path
  const schema = (ConfigSchema.properties as Record<string, TSchema>)[name]
  const got = JSON.stringify(String(input[name]))
  return `Invalid configuration: ${name}=${got} is not valid; expected ${schema?.expect ?? 'a valid value'}`
}

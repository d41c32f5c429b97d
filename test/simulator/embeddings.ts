import { createHash } from 'node:crypto'
import type { Exchange } from './exchange.ts'
import type { Scenario, SimulatorConfig } from './types.ts'
import { errorReply, invalidParameter } from './errors.ts'
import { dashscopeHeaders, faultBeforeAnswer, sendError, sendJson } from './reply.ts'

// POST /v1/embeddings as DashScope's compatible mode answers it (wire contract §1.11): at most 10 inputs per call,
// `dimensions` from a fixed set on text-embedding-v3/v4, an OpenAI-shaped list plus `id`. Vectors are derived from
// the text alone, so the same input always gets the same vector, whichever batch or position it arrives in.

/** DashScope's limit on inputs per call; larger batches are refused with a 400. */
export const SIM_EMBEDDINGS_BATCH = 10

/** Embedding models the simulator serves besides any id containing "embed" in its `models` option. */
export const SIM_EMBEDDING_MODELS = ['text-embedding-v1', 'text-embedding-v2', 'text-embedding-v3', 'text-embedding-v4']

const V3_V4_DIMENSIONS = [2048, 1536, 1024, 768, 512, 256, 128, 64]
const V3_DIMENSIONS = [1024, 768, 512, 256, 128, 64]

/** Requests seen per simulator, for overrides that fail the Nth embeddings call. */
const counts = new WeakMap<SimulatorConfig, number>()

/** A deterministic unit vector for a text: a xorshift stream seeded by the text's SHA-256. */
export function simVector (text: string, dimensions: number): number[] {
  const seed = createHash('sha256').update(text).digest()
  let a = seed.readUInt32LE(0) | 1
  let b = seed.readUInt32LE(4) | 1
  const vector = new Array<number>(dimensions)
  let norm = 0
  for (let i = 0; i < dimensions; i++) {
    // xorshift64-ish on two 32-bit halves; values in (-1, 1).
    let t = a ^ (a << 11)
    a = b
    b = (b ^ (b >>> 19) ^ t ^ (t >>> 8)) >>> 0
    t = (b / 0x100000000) * 2 - 1
    vector[i] = t
    norm += t * t
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 1
  for (let i = 0; i < dimensions; i++) vector[i] *= scale
  return vector
}

/** Deterministic stand-in for a tokenizer: one token per 4 UTF-8 bytes, at least 1 per input. */
export function simTokens (text: string): number {
  return Math.max(1, Math.ceil(Buffer.byteLength(text) / 4))
}

function servedModels (config: SimulatorConfig): Set<string> {
  return new Set([...SIM_EMBEDDING_MODELS, ...config.models.filter(id => /embed/i.test(id))])
}

function defaultDimensions (model: string): number {
  return /^text-embedding-v[12]$/.test(model) ? 1536 : 1024
}

/** POST /v1/embeddings. Order: connection faults, delays, injected error, validation, model, answer. */
export async function handleEmbeddings (ex: Exchange, config: SimulatorConfig): Promise<void> {
  const body = ex.rec.body
  const index = counts.get(config) ?? 0
  counts.set(config, index + 1)
  const sim = isObject(body) && isObject(body.sim) ? body.sim as Scenario : {}
  const scenario: Scenario = { ...config.defaults, ...sim, ...config.override?.(ex.rec, index) }
  if (await faultBeforeAnswer(ex, scenario, body)) return
  const problem = validate(body, ex.rec.raw)
  if (problem !== undefined) return sendError(ex, invalidParameter(problem, ex.requestId))
  const model: string = body.model
  if (config.strictModels && !servedModels(config).has(model)) {
    return sendError(ex, errorReply('model_not_found', ex.requestId, model))
  }
  const inputs: string[] = typeof body.input === 'string' ? [body.input] : body.input
  if (inputs.length > SIM_EMBEDDINGS_BATCH) {
    return sendError(ex, invalidParameter(`batch size is invalid, it should not be larger than ${SIM_EMBEDDINGS_BATCH}`, ex.requestId))
  }
  let dimensions = defaultDimensions(model)
  if (body.dimensions != null) {
    const allowed = model === 'text-embedding-v4' ? V3_V4_DIMENSIONS : model === 'text-embedding-v3' ? V3_DIMENSIONS : null
    if (!Number.isInteger(body.dimensions) || body.dimensions < 1 || (allowed !== null && !allowed.includes(body.dimensions))) {
      return sendError(ex, invalidParameter(`dimensions should be one of ${(allowed ?? V3_V4_DIMENSIONS).join(', ')}`, ex.requestId))
    }
    dimensions = body.dimensions
  }
  const base64 = body.encoding_format === 'base64'
  const data = inputs.map((text, i) => {
    const vector = simVector(text, dimensions)
    return { embedding: base64 ? encodeFloats(vector) : vector, index: i, object: 'embedding' }
  })
  let tokens = 0
  for (const text of inputs) tokens += simTokens(text)
  tokens = scenario.usage?.prompt_tokens ?? tokens
  if (scenario.stall === 'after_first') {
    ex.head(200, { ...dashscopeHeaders(ex), 'content-type': 'application/json' })
    ex.res.flushHeaders()
    return ex.stall()
  }
  const usage = scenario.noUsage === true ? undefined : { prompt_tokens: tokens, total_tokens: tokens }
  sendJson(ex, 200, { data, model, object: 'list', usage, id: ex.requestId })
}

function encodeFloats (vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4)
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i], i * 4)
  return bytes.toString('base64')
}

function validate (body: any, raw: string): string | undefined {
  if (raw.trim() === '') return 'Request body is empty.'
  if (body === undefined) return 'Request body is not valid JSON.'
  if (!isObject(body)) return 'Request body must be a JSON object.'
  if (typeof body.model !== 'string' || body.model === '') return 'Field `model` must be a non-empty string.'
  const input = body.input
  const texts = typeof input === 'string' ? [input] : input
  if (!Array.isArray(texts) || texts.length === 0) return 'Field `input` must be a string or a non-empty array of strings.'
  if (!texts.every(text => typeof text === 'string')) return 'Field `input` must be a string or an array of strings.'
  if (texts.some(text => text === '')) return 'Range of input length should be [1, 8192]'
  return undefined
}

function isObject (value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

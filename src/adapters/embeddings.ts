import { endianness } from 'node:os'
import { invalidRequest, upstreamProtocol, type GatewayError } from '../errors.ts'
import type { EmbeddingRequest } from '../schemas/embeddings.ts'
import type { Cost } from '../state/budgets.ts'
import type { Target, Topology } from '../topology.ts'
import { estimatePromptTokens } from './request-cost.ts'
import { isRecord } from './records.ts'

// /v1/embeddings as a translation at the edge of the pipeline (wire-apis.md §3): the inputs are split into batches
// the upstream accepts (DashScope takes at most 10 per call), each batch is one upstream call, and the answers are
// joined back in input order with their usage summed. Floats are always asked for upstream; base64 is made here.

/** Dimensions DashScope's text-embedding-v3 and v4 accept; any other value is a 400 from DashScope. */
const DASHSCOPE_DIMENSIONS: Record<string, readonly number[]> = {
  'text-embedding-v3': [1024, 768, 512, 256, 128, 64],
  'text-embedding-v4': [2048, 1536, 1024, 768, 512, 256, 128, 64]
}

export interface EmbeddingBatch {
  /** One vector per input of the batch, in the batch's order. */
  vectors: number[][]
  promptTokens: number
  totalTokens: number
}

/** The texts to embed, in order. */
export const inputsOf = (body: Pick<EmbeddingRequest, 'input'>): string[] => typeof body.input === 'string' ? [body.input] : body.input

/** What the request may cost a client's budget: one request, its inputs at one token per four bytes, no output. */
export function embeddingsCost (body: Pick<EmbeddingRequest, 'input'>): Cost {
  let bytes = 0
  for (const text of inputsOf(body)) bytes += Buffer.byteLength(text)
  return { requests: 1, tokens: estimatePromptTokens(bytes) }
}

/** Inputs per upstream call: the primary target's upstream setting (embeddings_batch_size), else EMBEDDINGS_BATCH_SIZE. */
export function batchSizeFor (topology: Topology, targets: Target[], fallback: number): number {
  const primary = topology.upstreams.find(upstream => upstream.name === targets[0]?.upstream)
  return primary?.embeddingsBatchSize ?? fallback
}

/** Consecutive slices of at most `size` inputs. */
export function batches<T> (inputs: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < inputs.length; i += size) out.push(inputs.slice(i, i + size))
  return out
}

/**
 * A 400 before anything is sent when a target is DashScope's text-embedding-v3/v4 and `dimensions` is not one of
 * the sizes it offers; null when the request can go.
 */
export function checkDimensions (models: string[], dimensions: number | null | undefined): GatewayError | null {
  if (dimensions == null) return null
  for (const model of models) {
    const allowed = DASHSCOPE_DIMENSIONS[model]
    if (allowed && !allowed.includes(dimensions)) {
      return invalidRequest(`Invalid value for 'dimensions': ${model} supports ${allowed.join(', ')}; got ${dimensions}.`, 'dimensions', 'invalid_value')
    }
  }
  return null
}

/**
 * The upstream body for one batch: the client's fields (unknown ones belong to the upstream), the target's model id,
 * the batch's inputs, and always floats. Nulls are left out rather than sent to upstreams that may not take them.
 */
export function upstreamPayload (body: EmbeddingRequest, model: string, input: string | string[]): string {
  const payload: Record<string, unknown> = { ...body, model, input, encoding_format: 'float' }
  if (payload.dimensions == null) delete payload.dimensions
  if (payload.user == null) delete payload.user
  return JSON.stringify(payload)
}

/**
 * Runs `count` tasks, at most `concurrency` at a time, and returns their results in task order. The first failure
 * aborts the others (they share `abort`) and is what this throws; the abort errors it causes are not.
 */
export async function runBatches<T> (count: number, concurrency: number, abort: AbortController, task: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count)
  let next = 0
  let failure: { error: unknown } | null = null
  const worker = async () => {
    while (failure === null && !abort.signal.aborted && next < count) {
      const index = next++
      try {
        results[index] = await task(index)
      } catch (error) {
        if (failure === null) {
          failure = { error }
          abort.abort()
        }
        return
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker))
  if (failure !== null) throw (failure as { error: unknown }).error
  // The client left between two batches: nothing failed, and nobody is waiting for the answer.
  if (next < count || abort.signal.aborted) throw abort.signal.reason ?? new DOMException('The client closed the connection', 'AbortError')
  return results
}

const tokenCount = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0

/**
 * One upstream answer, checked: `expected` vectors of finite numbers, each index once. A vector the upstream sent
 * as base64 after all is decoded. Anything else is a 502 naming what was wrong.
 */
export function readBatch (body: unknown, expected: number, model: string): EmbeddingBatch {
  const fail = (what: string): never => { throw upstreamProtocol(`for ${model}`, what) }
  const data = isRecord(body) ? body.data : undefined
  if (!Array.isArray(data)) return fail('an embeddings answer without a "data" array')
  if (data.length !== expected) return fail(`${data.length} embeddings for ${expected} inputs`)
  const vectors = new Array<number[]>(expected)
  for (let position = 0; position < data.length; position++) {
    const item: unknown = data[position]
    if (!isRecord(item)) return fail(`data[${position}] is not an object`)
    const index = item.index ?? position
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= expected || vectors[index] !== undefined) {
      return fail(`data[${position}].index is ${JSON.stringify(item.index)}`)
    }
    const vector = typeof item.embedding === 'string' ? decodeFloats(item.embedding) : item.embedding
    if (!Array.isArray(vector) || !vector.every(value => typeof value === 'number' && Number.isFinite(value))) {
      return fail(`data[${position}].embedding is not an array of numbers`)
    }
    vectors[index] = vector
  }
  const usage = isRecord(body) && isRecord(body.usage) ? body.usage : {}
  const promptTokens = tokenCount(usage.prompt_tokens)
  return { vectors, promptTokens, totalTokens: tokenCount(usage.total_tokens) || promptTokens }
}

const LITTLE_ENDIAN = endianness() === 'LE'

/** A vector as OpenAI's base64: the bytes of little-endian float32 values. */
export function encodeFloats (vector: number[]): string {
  const floats = Float32Array.from(vector)
  const bytes = Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength)
  if (!LITTLE_ENDIAN) bytes.swap32()
  return bytes.toString('base64')
}

/** Base64 little-endian float32 back to numbers (what openai-node does with the answer). */
export function decodeFloats (text: string): number[] | null {
  const bytes = Buffer.from(text, 'base64')
  if (bytes.length % 4 !== 0) return null
  const out = new Array<number>(bytes.length / 4)
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4)
  return out
}

/**
 * The client's answer, written directly: global indexes in input order, usage summed, the model the client asked
 * for. No object per vector is built and no schema serialiser walks the floats: each vector is one JSON.stringify of
 * a plain number array (V8's fast path for double arrays; Array#join was measured 1.75x slower, see the commit), or
 * one base64 string.
 */
export function embeddingsJson (model: string, parts: EmbeddingBatch[], base64: boolean): string {
  const out: string[] = ['{"object":"list","data":[']
  let index = 0
  let prompt = 0
  let total = 0
  for (const part of parts) {
    prompt += part.promptTokens
    total += part.totalTokens
    for (const vector of part.vectors) {
      out.push(`${index === 0 ? '' : ','}{"object":"embedding","index":${index},"embedding":`,
        base64 ? `"${encodeFloats(vector)}"}` : `${JSON.stringify(vector)}}`)
      index++
    }
  }
  out.push(`],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${prompt},"total_tokens":${total}}}`)
  return out.join('')
}

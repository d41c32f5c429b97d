import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Open, StringEnum } from './common.ts'

/** OpenAI's own ceiling on inputs per request; the gateway splits them into upstream-sized batches. */
export const MAX_EMBEDDING_INPUTS = 2048

const Text = Type.String({ minLength: 1 })

export const EmbeddingRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  input: Type.Union([
    Text,
    Type.Array(Text, { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS })
  ], { description: `a non-empty string or an array of 1 to ${MAX_EMBEDDING_INPUTS} non-empty strings (token-id arrays are not supported by this gateway)` }),
  dimensions: Nullable(Type.Integer({ minimum: 1 }), 'a positive integer, or null'),
  encoding_format: Nullable(StringEnum(['float', 'base64']), '"float", "base64" or null'),
  user: Nullable(Type.String(), 'a string, or null')
}, Open)

export type EmbeddingRequest = Static<typeof EmbeddingRequestSchema>

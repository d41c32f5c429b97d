import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Open, SamplingSchema } from './common.ts'

export const CompletionRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  prompt: Type.Union([
    Type.String(),
    Type.Array(Type.String(), { minItems: 1, maxItems: 128 })
  ], { description: 'a string or an array of 1 to 128 strings (token-id prompts are not supported)' }),
  ...SamplingSchema,
  echo: Nullable(Type.Boolean(), 'true, false or null'),
  suffix: Nullable(Type.String(), 'a string or null'),
  best_of: Nullable(Type.Integer({ minimum: 0, maximum: 20 }), 'an integer from 0 to 20, or null'),
  logprobs: Nullable(Type.Integer({ minimum: 0, maximum: 5 }), 'an integer from 0 to 5, or null'),
  logit_bias: Nullable(Type.Object({}, Open), 'an object, or null')
}, Open)

export type CompletionRequest = Static<typeof CompletionRequestSchema>

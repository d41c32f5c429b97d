import { Type, type TSchema, type SchemaOptions } from '@sinclair/typebox'

// OpenAI accepts `null` for nearly every optional parameter, and LangChain and others send it.
// `description` doubles as the validation message for the anyOf this produces (see src/validation.ts).
export const Nullable = <T extends TSchema>(schema: T, description: string) =>
  Type.Optional(Type.Union([schema, Type.Null()], { description }))

/** A string enum that Ajv reports as one `enum` error, not one error per literal. */
export const StringEnum = <T extends string[]>(values: [...T], options: SchemaOptions = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...options })

/** Request bodies stay open: fields the gateway does not know belong to the upstream (enable_thinking, top_k ...). */
export const Open = { additionalProperties: true } as const

export const StopSchema = Nullable(
  Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 4 })]),
  'a string, an array of up to 4 strings, or null'
)

export const StreamOptionsSchema = Nullable(
  Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, Open),
  'an object such as {"include_usage": true}, or null'
)

/**
 * The most output tokens a request may ask for (max_tokens, max_completion_tokens, max_output_tokens). Real ceilings
 * are far lower (Qwen3 models give 65,536, Anthropic clients ask for up to 128,000, and /v1/messages and /v1/responses
 * clamp to the model's ceiling, src/model-limits.ts), so this only stops absurd values (1e11) at the gateway instead
 * of upstream, with room for models that do not exist yet.
 */
export const MAX_OUTPUT_TOKENS = 1_000_000

/** An output-token budget, from 1 to MAX_OUTPUT_TOKENS. */
export const OutputTokens = () => Type.Integer({ minimum: 1, maximum: MAX_OUTPUT_TOKENS })

/** What an output-token budget must be, as a validation message says it. */
export const OUTPUT_TOKENS_TEXT = `an integer from 1 to ${MAX_OUTPUT_TOKENS}`

/** Sampling parameters that chat and legacy completions share, with OpenAI's ranges. */
export const SamplingSchema = {
  temperature: Nullable(Type.Number({ minimum: 0, maximum: 2 }), 'a number from 0 to 2, or null'),
  top_p: Nullable(Type.Number({ minimum: 0, maximum: 1 }), 'a number from 0 to 1, or null'),
  n: Nullable(Type.Integer({ minimum: 1, maximum: 128 }), 'an integer from 1 to 128, or null'),
  max_tokens: Nullable(OutputTokens(), `${OUTPUT_TOKENS_TEXT}, or null`),
  presence_penalty: Nullable(Type.Number({ minimum: -2, maximum: 2 }), 'a number from -2 to 2, or null'),
  frequency_penalty: Nullable(Type.Number({ minimum: -2, maximum: 2 }), 'a number from -2 to 2, or null'),
  seed: Nullable(Type.Integer(), 'an integer, or null'),
  stop: StopSchema,
  stream: Nullable(Type.Boolean(), 'true, false or null'),
  stream_options: StreamOptionsSchema,
  user: Type.Optional(Type.String())
}

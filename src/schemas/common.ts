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

/** Sampling parameters that chat and legacy completions share, with OpenAI's ranges. */
export const SamplingSchema = {
  temperature: Nullable(Type.Number({ minimum: 0, maximum: 2 }), 'a number from 0 to 2, or null'),
  top_p: Nullable(Type.Number({ minimum: 0, maximum: 1 }), 'a number from 0 to 1, or null'),
  n: Nullable(Type.Integer({ minimum: 1, maximum: 128 }), 'an integer from 1 to 128, or null'),
  max_tokens: Nullable(Type.Integer({ minimum: 1 }), 'a positive integer, or null'),
  presence_penalty: Nullable(Type.Number({ minimum: -2, maximum: 2 }), 'a number from -2 to 2, or null'),
  frequency_penalty: Nullable(Type.Number({ minimum: -2, maximum: 2 }), 'a number from -2 to 2, or null'),
  seed: Nullable(Type.Integer(), 'an integer, or null'),
  stop: StopSchema,
  stream: Nullable(Type.Boolean(), 'true, false or null'),
  stream_options: StreamOptionsSchema,
  user: Type.Optional(Type.String())
}

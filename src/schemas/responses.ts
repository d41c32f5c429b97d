import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Open, OUTPUT_TOKENS_TEXT, OutputTokens, StringEnum } from './common.ts'

// The Responses API request, as permissive as OpenAI's: items and tools are open objects (clients send fields the
// gateway passes by), and only what the gateway relies on, or OpenAI itself rejects, is checked here.

const Item = Type.Object({}, { ...Open, description: 'an input item object' })

const RequestFields = {
  input: Type.Optional(Type.Union([Type.String(), Type.Array(Item)], { description: 'a string or an array of input items' })),
  instructions: Nullable(Type.String(), 'a string, or null'),
  previous_response_id: Nullable(Type.String({ minLength: 1 }), 'a response id, or null'),
  tools: Nullable(Type.Array(Type.Object({ type: Type.String() }, Open)), 'an array of tools, or null'),
  tool_choice: Type.Optional(Type.Union([Type.String(), Type.Object({}, Open)], { description: '"none", "auto", "required" or an object naming a tool' })),
  parallel_tool_calls: Nullable(Type.Boolean(), 'true, false or null'),
  reasoning: Nullable(Type.Object({}, Open), 'an object such as {"effort": "low"}, or null'),
  text: Nullable(Type.Object({}, Open), 'an object such as {"format": {"type": "text"}}, or null'),
  conversation: Type.Optional(Type.Unknown()),
  background: Nullable(Type.Boolean(), 'true, false or null')
}

export const ResponseRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  ...RequestFields,
  store: Nullable(Type.Boolean(), 'true, false or null'),
  stream: Nullable(Type.Boolean(), 'true, false or null'),
  include: Nullable(Type.Array(Type.String()), 'an array of strings, or null'),
  max_output_tokens: Nullable(OutputTokens(), `${OUTPUT_TOKENS_TEXT}, or null`),
  temperature: Nullable(Type.Number({ minimum: 0, maximum: 2 }), 'a number from 0 to 2, or null'),
  top_p: Nullable(Type.Number({ minimum: 0, maximum: 1 }), 'a number from 0 to 1, or null'),
  metadata: Nullable(Type.Object({}, Open), 'an object of string values, or null'),
  user: Type.Optional(Type.String())
}, Open)

export type ResponseRequest = Static<typeof ResponseRequestSchema>

/** POST /v1/responses/input_tokens: a request's input, counted without answering it (model optional). */
export const InputTokensRequestSchema = Type.Object({
  model: Type.Optional(Type.String()),
  ...RequestFields
}, Open)

export type InputTokensRequest = Static<typeof InputTokensRequestSchema>

export const ResponseIdParams = Type.Object({ id: Type.String({ minLength: 1 }) })

export const InputItemsQuery = Type.Object({
  after: Type.Optional(Type.String()),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'an integer from 1 to 100' })),
  order: Type.Optional(StringEnum(['asc', 'desc'], { description: '"asc" or "desc"' })),
  include: Type.Optional(Type.Unknown())
}, Open)

export const RetrieveQuery = Type.Object({
  stream: Type.Optional(Type.String()),
  include: Type.Optional(Type.Unknown())
}, Open)

import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Open, OUTPUT_TOKENS_TEXT, OutputTokens, SamplingSchema, StringEnum } from './common.ts'

// As permissive as OpenAI's own API and no stricter: a schema that refuses what the real API
// takes breaks an agent in the field. Only what the gateway relies on, or OpenAI itself rejects, is checked.

const ContentPart = Type.Object({ type: Type.String() }, { ...Open, description: 'a content part with a "type"' })

const MessageContent = Type.Optional(Type.Union([
  Type.String(),
  Type.Array(ContentPart),
  Type.Null()
], { description: 'a string, an array of content parts, or null' }))

const ToolCall = Type.Object({
  id: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  function: Type.Object({
    name: Type.String(),
    arguments: Type.String()
  }, Open)
}, Open)

export const Roles = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const

export const ChatMessage = Type.Object({
  role: StringEnum([...Roles]),
  content: MessageContent,
  name: Type.Optional(Type.String()),
  tool_calls: Nullable(Type.Array(ToolCall), 'an array of tool calls, or null'),
  tool_call_id: Type.Optional(Type.String())
}, Open)

const Tool = Type.Object({
  type: Type.String(),
  function: Type.Optional(Type.Object({
    name: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
    parameters: Type.Optional(Type.Object({}, Open)),
    strict: Nullable(Type.Boolean(), 'true, false or null')
  }, Open))
}, Open)

export const ChatCompletionRequestSchema = Type.Object({
  model: Type.String({ minLength: 1 }),
  messages: Type.Array(ChatMessage, { minItems: 1 }),
  ...SamplingSchema,
  max_completion_tokens: Nullable(OutputTokens(), `${OUTPUT_TOKENS_TEXT}, or null`),
  logprobs: Nullable(Type.Boolean(), 'true, false or null'),
  top_logprobs: Nullable(Type.Integer({ minimum: 0, maximum: 20 }), 'an integer from 0 to 20, or null'),
  tools: Type.Optional(Type.Array(Tool)),
  tool_choice: Type.Optional(Type.Union([
    Type.String(),
    Type.Object({}, Open)
  ], { description: '"none", "auto", "required" or an object naming a tool' })),
  parallel_tool_calls: Nullable(Type.Boolean(), 'true, false or null'),
  response_format: Type.Optional(Type.Object({ type: Type.String() }, Open)),
  metadata: Nullable(Type.Object({}, Open), 'an object of string values, or null'),
  store: Nullable(Type.Boolean(), 'true, false or null')
}, Open)

export type ChatCompletionRequest = Static<typeof ChatCompletionRequestSchema>

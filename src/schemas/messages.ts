import { Type, type Static } from '@sinclair/typebox'
import { Nullable, Open, OutputTokens, StringEnum } from './common.ts'

// Anthropic Messages requests, checked only where the gateway relies on a shape (wire-apis §2.2): every object
// stays open, because Claude Code sends fields and block types newer than this schema (context_management,
// cache_control, betas) and must not be refused for them.

const Block = Type.Object({ type: Type.String() }, { ...Open, description: 'a content block with a "type"' })

const Content = Type.Union([Type.String(), Type.Array(Block)], { description: 'a string or an array of content blocks' })

const Message = Type.Object({
  role: StringEnum(['user', 'assistant', 'system']),
  content: Content
}, Open)

const Tool = Type.Object({
  name: Type.String({ minLength: 1 }),
  type: Type.Optional(Type.String())
}, Open)

const ToolChoice = Type.Object({
  type: StringEnum(['auto', 'any', 'tool', 'none']),
  name: Type.Optional(Type.String()),
  disable_parallel_tool_use: Type.Optional(Type.Boolean())
}, Open)

const Thinking = Type.Object({
  type: Type.String(),
  budget_tokens: Type.Optional(Type.Integer({ minimum: 0 }))
}, Open)

/** What /v1/messages and count_tokens share: everything but max_tokens and stream. */
const common = {
  model: Type.String({ minLength: 1 }),
  messages: Type.Array(Message, { minItems: 1 }),
  system: Type.Optional(Content),
  tools: Type.Optional(Type.Array(Tool)),
  tool_choice: Type.Optional(ToolChoice),
  thinking: Type.Optional(Thinking),
  output_config: Type.Optional(Type.Object({ effort: Type.Optional(Type.String()), format: Type.Optional(Type.Object({ type: Type.String() }, Open)) }, Open)),
  metadata: Type.Optional(Type.Object({}, Open))
}

export const MessagesRequestSchema = Type.Object({
  ...common,
  max_tokens: OutputTokens(),
  stream: Nullable(Type.Boolean(), 'true, false or null'),
  stop_sequences: Type.Optional(Type.Array(Type.String())),
  temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
  top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  top_k: Type.Optional(Type.Integer({ minimum: 0 }))
}, Open)

export const CountTokensRequestSchema = Type.Object(common, Open)

export type MessagesRequestBody = Static<typeof MessagesRequestSchema>
export type CountTokensRequestBody = Static<typeof CountTokensRequestSchema>

export const CountTokensResponseSchema = Type.Object({
  input_tokens: Type.Integer({ minimum: 0, description: 'the prompt\'s size after translation, estimated' })
})

import { asksForThinking } from '../adapters/chat-request.ts'
import { XmlToolCallParser } from '../adapters/xml-tools/parser.ts'
import type { ModelLimits } from '../model-limits.ts'
import type { Target } from '../topology.ts'
import type { AnswerChoice } from './service.ts'

const newXmlParser = () => new XmlToolCallParser()

/**
 * How an answer is shaped: reasoning as <think> tags when asked; and when the request offers tools to an upstream
 * without native tool calling, the tool calls the model wrote as XML parsed out of its text.
 */
export const answerShape = (usesTools: boolean, thinkTags = false): AnswerChoice =>
  context => ({ thinkTags, xmlTools: usesTools && !context.nativeTools ? newXmlParser : null })

/**
 * A non-streamed request that turns thinking on for a model that thinks: DashScope serves such answers as streams
 * only, so the pipeline asks for a stream and gathers it (`pipeline.gather`). The other targets take the same body.
 */
export const gathersThinking = (chat: Record<string, unknown>, targets: Target[], limits: ModelLimits) =>
  chat.stream !== true && asksForThinking(chat) && targets.some(target => limits.thinks(target.model))

import { XmlToolCallParser } from '../adapters/xml-tools/parser.ts'
import type { AnswerChoice } from './service.ts'

const newXmlParser = () => new XmlToolCallParser()

/**
 * How an answer is shaped: reasoning as <think> tags when asked; and when the request offers tools to an upstream
 * without native tool calling, the tool calls the model wrote as XML parsed out of its text.
 */
export const answerShape = (usesTools: boolean, thinkTags = false): AnswerChoice =>
  context => ({ thinkTags, xmlTools: usesTools && !context.nativeTools ? newXmlParser : null })

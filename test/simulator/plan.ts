import { randomBytes } from 'node:crypto'
import type { Scenario } from './types.ts'
import { countPromptTokens, lastUserText, splitText } from './text.ts'

export interface PlannedText {
  text: string
  pieces: string[]
}

export interface PlannedCall {
  id: string
  name: string
  arguments: string
  fragments: string[]
}

export interface PlannedUsage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  reasoning_tokens?: number
  cached_tokens: number
}

/** Everything one answer contains, shared by the JSON and the SSE renderings. */
export interface Plan {
  id: string
  created: number
  model: string
  n: number
  reasoningField: 'reasoning_content' | 'reasoning'
  reasoning?: PlannedText
  content: PlannedText
  toolCalls?: PlannedCall[]
  usage: PlannedUsage
}

export function planAnswer (body: any, scenario: Scenario, requestId: string, n: number): Plan {
  const reply = scenario.reply ?? 'Hello from the Qwen simulator! You said: ' + lastUserText(body.messages)
  const content = { text: reply, pieces: splitText(reply, scenario.chunkSize) }
  const reasoning = scenario.reasoning === undefined
    ? undefined
    : { text: scenario.reasoning, pieces: splitText(scenario.reasoning, scenario.chunkSize) }
  const toolCalls = scenario.toolCalls?.map((call) => ({
    // Same shape as DashScope's ids, e.g. call_30fb8bdcce274fbfbb8bd4.
    id: 'call_' + randomBytes(11).toString('hex'),
    name: call.name,
    arguments: call.arguments,
    fragments: splitText(call.arguments, scenario.chunkSize)
  }))
  const answerUnits = toolCalls === undefined
    ? content.pieces.length
    : toolCalls.reduce((sum, call) => sum + call.fragments.length, 0)
  const reasoningUnits = (reasoning?.pieces.length ?? 0) * n
  const prompt = scenario.usage?.prompt_tokens ?? countPromptTokens(body.messages)
  const completion = scenario.usage?.completion_tokens ?? answerUnits * n + reasoningUnits
  return {
    id: `chatcmpl-${requestId}`,
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    n,
    reasoningField: scenario.reasoningField ?? 'reasoning_content',
    reasoning,
    content,
    toolCalls,
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      reasoning_tokens: reasoning === undefined ? undefined : Math.min(reasoningUnits, completion),
      cached_tokens: scenario.usage?.cached_tokens ?? 0
    }
  }
}

/**
 * Usage as DashScope writes it (contract 1.5, 1.6): the stream's usage chunk has
 * `completion_tokens_details: null` unless the model reasoned.
 */
export function usageJson (usage: PlannedUsage, stream: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    total_tokens: usage.total_tokens
  }
  if (usage.reasoning_tokens !== undefined) {
    out.completion_tokens_details = {
      reasoning_tokens: usage.reasoning_tokens,
      text_tokens: usage.completion_tokens - usage.reasoning_tokens
    }
  } else if (stream) {
    out.completion_tokens_details = null
  }
  out.prompt_tokens_details = { cached_tokens: usage.cached_tokens }
  return out
}

import type { Usage } from '../usage.ts'
import type { ResponseUsage } from './types.ts'

// Chat usage in Responses terms (wire-apis §4.3). A missing field counts as 0, never undefined.

const count = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0)

export function responseUsage (usage: Usage | null | undefined): ResponseUsage | null {
  if (!usage || typeof usage !== 'object') return null
  const prompt = usage.prompt_tokens_details as Record<string, unknown> | null | undefined
  const completion = usage.completion_tokens_details as Record<string, unknown> | null | undefined
  const input = count(usage.prompt_tokens)
  const output = count(usage.completion_tokens)
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: count(prompt?.cached_tokens), cache_write_tokens: count(prompt?.cache_creation_input_tokens) },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: count(completion?.reasoning_tokens) },
    total_tokens: count(usage.total_tokens) || input + output
  }
}

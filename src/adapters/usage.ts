import { isRecord } from './records.ts'

// Usage as OpenAI and DashScope report it (wire contract §1.6). A missing field counts as 0, never as an error.

export interface Usage {
  prompt_tokens?: number
  completion_tokens?: number
  total_tokens?: number
  prompt_tokens_details?: { cached_tokens?: number | null } | null
  completion_tokens_details?: { reasoning_tokens?: number | null } | null
}

export interface TokenCounts {
  prompt: number
  completion: number
  cached: number
  reasoning: number
}

const count = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0)

export function tokenCounts (usage: Usage | null | undefined): TokenCounts | null {
  if (!usage || typeof usage !== 'object') return null
  return {
    prompt: count(usage.prompt_tokens),
    completion: count(usage.completion_tokens),
    cached: count(usage.prompt_tokens_details?.cached_tokens),
    reasoning: count(usage.completion_tokens_details?.reasoning_tokens)
  }
}

type Counts = Record<string, number>

const DETAILS = ['prompt_tokens_details', 'completion_tokens_details']

/** The numeric fields of both, summed; a field only one of them has counts 0 in the other. */
function sumCounts (a: Record<string, unknown>, b: Record<string, unknown>): Counts {
  const out: Counts = {}
  for (const source of [a, b]) {
    for (const [key, value] of Object.entries(source)) if (typeof value === 'number' || value === null) out[key] = (out[key] ?? 0) + count(value)
  }
  return out
}

/**
 * Sums the usage of several answers (a legacy request with an array prompt fans out into several), and gives one
 * answer's usage the same shape: prompt_tokens, completion_tokens and total_tokens always; every other number the
 * upstream sent (cache_read_input_tokens ...); prompt_tokens_details and completion_tokens_details when either side
 * has them, with every number in them. A missing field counts 0, a missing total_tokens as prompt + completion.
 */
export function addUsage (total: Usage | null, usage: Usage | null | undefined): Usage | null {
  if (!isRecord(usage)) return total
  const next: Record<string, unknown> = { ...usage, total_tokens: usage.total_tokens ?? count(usage.prompt_tokens) + count(usage.completion_tokens) }
  const base = (total ?? {}) as Record<string, unknown>
  const out: Record<string, unknown> = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, ...sumCounts(base, next) }
  for (const key of DETAILS) {
    delete out[key]
    const mine = base[key]
    const theirs = next[key]
    if (isRecord(mine) || isRecord(theirs)) out[key] = sumCounts(isRecord(mine) ? mine : {}, isRecord(theirs) ? theirs : {})
  }
  return out as Usage
}

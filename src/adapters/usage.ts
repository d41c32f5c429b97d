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

/** Sums the usage of several answers (a legacy request with an array prompt fans out into several). */
export function addUsage (total: Usage | null, usage: Usage | null | undefined): Usage | null {
  if (!usage) return total
  const sum = (a?: number | null, b?: number | null) => (a ?? 0) + (b ?? 0)
  if (!total) return { ...usage }
  return {
    prompt_tokens: sum(total.prompt_tokens, usage.prompt_tokens),
    completion_tokens: sum(total.completion_tokens, usage.completion_tokens),
    total_tokens: sum(total.total_tokens, usage.total_tokens),
    prompt_tokens_details: { cached_tokens: sum(total.prompt_tokens_details?.cached_tokens, usage.prompt_tokens_details?.cached_tokens) },
    completion_tokens_details: { reasoning_tokens: sum(total.completion_tokens_details?.reasoning_tokens, usage.completion_tokens_details?.reasoning_tokens) }
  }
}

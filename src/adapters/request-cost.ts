import type { Cost } from '../state/budgets.ts'

// What a request may cost a client's budget, decided before it is sent: the prompt, estimated at one token per
// four bytes (close for English and Chinese alike, and settled with the upstream's real count afterwards), plus
// the most the answers may add: max_completion_tokens or max_tokens, else a configured default, per answer.

interface OutputLimits {
  max_tokens?: number | null
  max_completion_tokens?: number | null
  n?: number | null
}

export const estimatePromptTokens = (bytes: number) => Math.ceil(bytes / 4)

const maxOutput = (body: OutputLimits, defaultMaxTokens: number) =>
  (body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens) * (body.n ?? 1)

/** A chat request: one upstream call for the whole body. */
export function chatCost (body: OutputLimits, bodyBytes: number, defaultMaxTokens: number): Cost {
  return { requests: 1, tokens: estimatePromptTokens(bodyBytes) + maxOutput(body, defaultMaxTokens) }
}

/** A legacy completion: one upstream call per prompt, each counted as a request and reserving its own tokens. */
export function legacyCost (body: OutputLimits & { prompt: string | string[] }, defaultMaxTokens: number): Cost {
  const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt
  let tokens = 0
  for (const prompt of prompts) tokens += estimatePromptTokens(Buffer.byteLength(prompt)) + maxOutput(body, defaultMaxTokens)
  return { requests: prompts.length, tokens }
}

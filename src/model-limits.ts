// What the gateway knows of a model's limits, for the families that must send or clamp an output budget
// (/v1/messages requires max_tokens and Claude Code asks for 32,000 or more; Codex never sets one and fails the turn
// when the answer is cut short). Per DashScope's model pages; a configured MODEL_MAX_OUTPUT_TOKENS entry wins.
// For a model nobody describes (a local vLLM or Ollama model), nothing is known: the request goes as asked.

const KNOWN_MAX_OUTPUT: Array<[prefix: string, tokens: number]> = [
  ['qwen3-coder', 65_536],
  ['qwen3-max', 65_536],
  ['qwen3.5', 65_536],
  ['qwen3.6', 65_536],
  ['qwen-plus', 32_768],
  ['qwen-flash', 32_768],
  ['qwen-turbo', 16_384],
  ['qwen-max', 8192],
  ['qwq', 8192]
]

// Models that reject DashScope's thinking switch, or have no thinking mode at all.
const WITHOUT_THINKING = /coder|^qwen-max/

export interface ModelLimits {
  /** The most output tokens the upstream model gives, or null when unknown. */
  maxOutputTokens (model: string): number | null
  /** Whether the upstream model takes `enable_thinking` (Qwen-Coder and qwen-max do not). */
  thinks (model: string): boolean
}

/** Reads `model=tokens` pairs (MODEL_MAX_OUTPUT_TOKENS); a model ending in `*` matches a prefix. Throws on a bad pair. */
export function parseMaxOutputTokens (pairs: string[]): Array<[prefix: string, tokens: number, exact: boolean]> {
  return pairs.map(pair => {
    const match = /^([^=\s]+)=(\d+)$/.exec(pair)
    if (!match || Number(match[2]) < 1) throw new Error(`MODEL_MAX_OUTPUT_TOKENS: "${pair}" is not model=tokens (for example qwen3-coder-*=65536)`)
    const exact = !match[1].endsWith('*')
    return [exact ? match[1] : match[1].slice(0, -1), Number(match[2]), exact]
  })
}

export function createModelLimits (configured: string[]): ModelLimits {
  const own = parseMaxOutputTokens(configured).sort((a, b) => Number(b[2]) - Number(a[2]) || b[0].length - a[0].length)
  return {
    maxOutputTokens (model) {
      for (const [prefix, tokens, exact] of own) if (exact ? model === prefix : model.startsWith(prefix)) return tokens
      for (const [prefix, tokens] of KNOWN_MAX_OUTPUT) if (model.startsWith(prefix)) return tokens
      return null
    },
    thinks: model => !WITHOUT_THINKING.test(model)
  }
}

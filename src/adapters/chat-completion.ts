import type { Usage } from './usage.ts'

export interface ChatCompletion {
  id?: string
  object?: string
  created?: number
  model?: string
  choices?: Array<{
    index: number
    message?: Record<string, unknown>
    finish_reason?: string | null
    logprobs?: unknown
  }>
  usage?: Usage | null
  [key: string]: unknown
}

/**
 * DashScope omits `message.refusal` and sometimes `logprobs` (wire contract §1.4), which OpenAI's schema
 * requires. Everything else, extensions such as `reasoning_content` included, is left exactly as it came.
 */
export function normaliseCompletion (completion: ChatCompletion): ChatCompletion {
  for (const choice of completion.choices ?? []) {
    if (choice.message && !('refusal' in choice.message)) choice.message.refusal = null
    if (!('logprobs' in choice)) choice.logprobs = null
  }
  return completion
}

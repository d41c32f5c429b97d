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

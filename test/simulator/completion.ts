import type { Plan } from './plan.ts'
import { usageJson } from './plan.ts'

/** Non-streaming chat.completion as DashScope returns it (contract 1.4). */
export function completionBody (plan: Plan): Record<string, unknown> {
  const choices = []
  for (let index = 0; index < plan.n; index++) {
    choices.push({
      index,
      finish_reason: plan.toolCalls === undefined ? 'stop' : 'tool_calls',
      logprobs: null,
      message: message(plan)
    })
  }
  return {
    id: plan.id,
    object: 'chat.completion',
    created: plan.created,
    model: plan.model,
    system_fingerprint: null,
    choices,
    usage: usageJson(plan.usage, false)
  }
}

// No `refusal` key: DashScope omits it and the gateway is expected to add it.
function message (plan: Plan): Record<string, unknown> {
  // Tool-call answers carry content "" (empty string, not null).
  const out: Record<string, unknown> = { role: 'assistant', content: plan.toolCalls === undefined ? plan.content.text : '' }
  if (plan.reasoning !== undefined) out[plan.reasoningField] = plan.reasoning.text
  if (plan.toolCalls !== undefined) {
    out.tool_calls = plan.toolCalls.map((call, index) => ({
      index,
      id: call.id,
      type: 'function',
      function: { name: call.name, arguments: call.arguments }
    }))
  }
  return out
}

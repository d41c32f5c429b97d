import type { Exchange } from './exchange.ts'
import type { Scenario, SimulatorConfig } from './types.ts'
import { completionBody } from './completion.ts'
import { errorReply, invalidParameter } from './errors.ts'
import { planAnswer } from './plan.ts'
import { dashscopeHeaders, faultBeforeAnswer, sendError, sendJson } from './reply.ts'
import { streamAnswer } from './stream.ts'

/** POST /v1/chat/completions. Order: connection faults, delays, injected error, validation, answer. */
export async function handleChat (ex: Exchange, config: SimulatorConfig): Promise<void> {
  const body = ex.rec.body
  const requested = resolveScenario(config.defaults, isObject(body) ? body.sim : undefined)
  const scenario = resolveScenario(requested, config.override?.(ex.rec, config.chatCount++))
  if (await faultBeforeAnswer(ex, scenario, body)) return
  const problem = validate(body, ex.rec.raw)
  if (problem !== undefined) return sendError(ex, invalidParameter(problem, ex.requestId))
  if (config.strictModels && !config.models.includes(body.model)) {
    return sendError(ex, errorReply('model_not_found', ex.requestId, body.model))
  }
  // DashScope serves n > 1 only without tools (contract 1.3).
  const n = scenario.toolCalls === undefined ? (body.n ?? 1) : 1
  const plan = planAnswer(body, scenario, ex.requestId, n)
  if (body.stream === true) {
    const includeUsage = body.stream_options?.include_usage === true && scenario.noUsage !== true
    return streamAnswer(ex, plan, scenario, includeUsage)
  }
  if (scenario.stall === 'after_first') {
    ex.head(200, { ...dashscopeHeaders(ex), 'content-type': 'application/json' })
    ex.res.flushHeaders()
    return ex.stall()
  }
  sendJson(ex, 200, completionBody(plan))
}

/** `sim` in the body overrides the defaults; `framing` is merged one level deep. */
function resolveScenario (defaults: Scenario, sim: unknown): Scenario {
  if (!isObject(sim)) return defaults
  return { ...defaults, ...sim, framing: { ...defaults.framing, ...sim.framing } }
}

function validate (body: any, raw: string): string | undefined {
  if (raw.trim() === '') return 'Request body is empty.'
  if (body === undefined) return 'Request body is not valid JSON.'
  if (!isObject(body)) return 'Request body must be a JSON object.'
  if (typeof body.model !== 'string' || body.model === '') return 'Field `model` must be a non-empty string.'
  if (!Array.isArray(body.messages) || body.messages.length === 0) return 'Field `messages` must be a non-empty array.'
  if (body.n != null && !(Number.isInteger(body.n) && body.n >= 1 && body.n <= 4)) return 'Range of n should be [1, 4]'
  return undefined
}

function isObject (value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

import type { Exchange } from './exchange.ts'
import type { SimulatorConfig } from './types.ts'
import { statusReply } from './errors.ts'
import { sendError, sendJson } from './reply.ts'

// A fixed timestamp keeps answers stable across runs (the value seen for qwen-plus, contract 1.9).
const CREATED = 1752741600

/** GET /v1/models: ids only, no context or capability data (contract 1.9). */
export function handleModels (ex: Exchange, config: SimulatorConfig): void {
  if (config.modelsStatus !== undefined) return sendError(ex, statusReply(config.modelsStatus, ex.requestId))
  const data = config.models.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'system' }))
  sendJson(ex, 200, { object: 'list', data })
}

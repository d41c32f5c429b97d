import type { FastifySchemaValidationError } from 'fastify/types/schema.js'
import { invalidRequest, type GatewayError } from './errors.ts'

// Ajv reports `/messages/0/role`; OpenAI names the same field `messages[0].role`.
export function paramFromPath (instancePath: string, missing?: string): string | null {
  const parts = instancePath.split('/').slice(1)
  if (missing) parts.push(missing)
  let param = ''
  for (const part of parts) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~')
    param += /^\d+$/.test(key) ? `[${key}]` : (param ? `.${key}` : key)
  }
  return param || null
}

interface VerboseError extends FastifySchemaValidationError {
  parentSchema?: { description?: string, type?: string, minimum?: number, maximum?: number }
}

// With allErrors off Ajv stops at the first failing keyword, except inside anyOf where it also lists
// each branch's failure; the anyOf error itself says most about what the client should send.
function pickError (errors: VerboseError[]): VerboseError {
  return errors.find(error => error.keyword === 'anyOf') ?? errors[0]
}

// Ajv's own words ("must NOT have fewer than 1 characters", "must be <= 10") read as a machine's.
const TYPE_NAMES: Record<string, string> = {
  string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', object: 'an object', array: 'an array', null: 'null'
}
const COMPARISONS: Record<string, string> = { '>=': 'at least', '<=': 'at most', '>': 'greater than', '<': 'less than' }

function explain (error: VerboseError): string {
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'anyOf':
    case 'oneOf':
      return error.parentSchema?.description ? `must be ${error.parentSchema.description}` : 'has an unsupported shape'
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map(value => JSON.stringify(value)).join(', ')}`
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`
    case 'type':
      return `must be ${TYPE_NAMES[String(params.type)] ?? String(params.type)}`
    case 'minLength':
      return params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`
    case 'maxLength':
      return `must be at most ${String(params.limit)} characters long`
    case 'minimum':
    case 'maximum': {
      // A range says both ends, as the nullable fields' descriptions do ("an integer from 1 to 1000000, or null").
      const { type, minimum, maximum } = error.parentSchema ?? {}
      if (minimum !== undefined && maximum !== undefined) return `must be ${type === 'integer' ? 'an integer' : 'a number'} from ${minimum} to ${maximum}`
      return `must be ${COMPARISONS[String(params.comparison)] ?? String(params.comparison)} ${String(params.limit)}`
    }
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${COMPARISONS[String(params.comparison)] ?? String(params.comparison)} ${String(params.limit)}`
    default:
      return error.message ?? 'is invalid'
  }
}

export function fromValidationErrors (errors: FastifySchemaValidationError[], context: string): GatewayError {
  const error = pickError(errors as VerboseError[])
  const missing = error.keyword === 'required' ? String((error.params as { missingProperty: string }).missingProperty) : undefined
  const param = paramFromPath(error.instancePath, missing)
  const where = context === 'body' ? '' : ` in the ${context}`
  if (missing) return invalidRequest(`Missing required parameter: '${param}'${where}.`, param, 'missing_required_parameter')
  if (!param && context === 'body') return invalidRequest('The request body must be a JSON object, sent with "Content-Type: application/json".', null, 'invalid_type')
  if (!param) return invalidRequest(`The request ${context} ${explain(error)}.`, null, 'invalid_type')
  // A model that is no string, or an empty one, never reaches the upstream: say where the valid ids are.
  const hint = param === 'model' && context === 'body' ? ' GET /v1/models lists the models this gateway serves.' : ''
  return invalidRequest(`Invalid value for '${param}'${where}: ${explain(error)}.${hint}`, param, error.keyword === 'type' ? 'invalid_type' : 'invalid_value')
}

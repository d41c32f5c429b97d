import { STATUS_CODES } from 'node:http'
import type { ErrorName } from './types.ts'

interface WrappedSpec { status: number, message: string, type: string, code: string }
interface UnwrappedSpec { status: number, unwrapped: { code: string, message: string } }
interface HtmlSpec { status: number, html: string }
type ErrorSpec = WrappedSpec | UnwrappedSpec | HtmlSpec

export interface ErrorReply {
  status: number
  contentType: string
  body: string
}

// Messages, types and codes as captured from DashScope compatible mode (wire contract 1.8).
// PascalCase codes repeat as `type`, as in a captured Arrearage body.
const CATALOG: Record<ErrorName, ErrorSpec> = {
  invalid_api_key: {
    status: 401,
    message: 'Incorrect API key provided. For details, see: https://www.alibabacloud.com/help/en/model-studio/error-code#apikey-error',
    type: 'invalid_request_error',
    code: 'invalid_api_key'
  },
  // Native-mode paths answer without the `error` wrapper.
  invalid_api_key_unwrapped: { status: 401, unwrapped: { code: 'InvalidApiKey', message: 'Invalid API-key provided.' } },
  access_denied: {
    status: 403,
    message: 'Access to model denied. Please make sure you are eligible for using the model.',
    type: 'access_denied',
    code: 'AccessDenied'
  },
  limit_requests: { status: 429, message: 'You exceeded your current requests list.', type: 'limit_requests', code: 'limit_requests' },
  rate_quota: {
    status: 429,
    message: 'Requests rate limit exceeded, please try again later.',
    type: 'Throttling.RateQuota',
    code: 'Throttling.RateQuota'
  },
  allocation_quota: {
    status: 429,
    message: 'You exceeded your current quota, please check your plan and billing details. For details, see: https://help.aliyun.com/zh/model-studio/error-code#token-limit',
    type: 'insufficient_quota',
    code: 'insufficient_quota'
  },
  allocation_quota_unwrapped: {
    status: 429,
    unwrapped: { code: 'Throttling.AllocationQuota', message: 'Allocated quota exceeded, please increase your quota limit.' }
  },
  data_inspection_failed: {
    status: 400,
    message: 'Input data may contain inappropriate content.',
    type: 'data_inspection_failed',
    code: 'data_inspection_failed'
  },
  arrearage: {
    status: 400,
    message: 'Access denied, please make sure your account is in good standing. For details, see: https://help.aliyun.com/zh/model-studio/error-code#overdue-payment',
    type: 'Arrearage',
    code: 'Arrearage'
  },
  context_overflow: {
    status: 400,
    message: '<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 129024]',
    type: 'invalid_request_error',
    code: 'invalid_parameter_error'
  },
  model_not_found: {
    status: 404,
    message: 'The model `{model}` does not exist or you do not have access to it.',
    type: 'invalid_request_error',
    code: 'model_not_found'
  },
  internal_error: {
    status: 500,
    message: 'Internal server error, please try again later.',
    type: 'InternalError',
    code: 'InternalError'
  },
  // Front proxies answer 502/503 with an HTML page, not JSON.
  bad_gateway_html: { status: 502, html: htmlPage('502 Bad Gateway') },
  service_unavailable_html: { status: 503, html: htmlPage('503 Service Temporarily Unavailable') }
}

export function errorReply (name: ErrorName, requestId: string, model = ''): ErrorReply {
  const spec = CATALOG[name]
  if ('html' in spec) return { status: spec.status, contentType: 'text/html', body: spec.html }
  if ('unwrapped' in spec) {
    return { status: spec.status, contentType: 'application/json', body: JSON.stringify({ ...spec.unwrapped, request_id: requestId }) }
  }
  return wrappedReply(spec.status, spec.code, spec.message.replace('{model}', model), requestId, spec.type)
}

/** `{"error":{message,type,param,code},"request_id"}`, the usual compatible-mode shape. */
export function wrappedReply (status: number, code: string, message: string, requestId: string, type = 'invalid_request_error'): ErrorReply {
  const body = { error: { message, type, param: null, code }, request_id: requestId }
  return { status, contentType: 'application/json', body: JSON.stringify(body) }
}

export function invalidParameter (message: string, requestId: string): ErrorReply {
  return wrappedReply(400, 'invalid_parameter_error', message, requestId)
}

/** Error body for `modelsStatus` (an upstream whose /models fails or does not exist). */
export function statusReply (status: number, requestId: string): ErrorReply {
  if (status === 401) return errorReply('invalid_api_key', requestId)
  if (status === 403) return errorReply('access_denied', requestId)
  if (status === 429) return errorReply('limit_requests', requestId)
  if (status === 500) return errorReply('internal_error', requestId)
  const text = STATUS_CODES[status] ?? 'Error'
  const code = status === 404 ? 'not_found' : text.replaceAll(' ', '')
  return wrappedReply(status, code, text, requestId, status >= 500 ? 'server_error' : 'invalid_request_error')
}

export function notFoundReply (method: string, path: string, requestId: string): ErrorReply {
  return wrappedReply(404, 'not_found', `The requested resource \`${method} ${path}\` was not found.`, requestId)
}

/** Output moderation failing after text was sent (contract 1.8, mid-stream). */
export function inspectionFrame (requestId: string): string {
  return JSON.stringify({
    error: {
      message: 'Output data may contain inappropriate content.',
      type: 'data_inspection_failed',
      param: null,
      code: 'data_inspection_failed'
    },
    id: `chatcmpl-${requestId}`,
    request_id: requestId
  })
}

/** Token Plan's `event: error` payload: unwrapped `{code, message}` (contract 1.8, mid-stream). */
export function eventErrorFrame (): string {
  return JSON.stringify({
    code: 'Throttling.AllocationQuota',
    message: 'Allocated quota exceeded, please increase your quota limit. The quota will reset at 08-12 14:52:00 UTC'
  })
}

function htmlPage (title: string): string {
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`
}

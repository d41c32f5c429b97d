import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { GatewayError, internalError, invalidRequest, routeNotFound } from './errors.ts'
import { fromValidationErrors } from './validation.ts'
import { isAbort } from './adapters/upstream-failures.ts'

// Fastify's own client errors, reworded for API users. Anything else below 500 keeps Fastify's message.
function fromFastifyError (error: FastifyError, bodyLimit: number): GatewayError | null {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError({ statusCode: 413, type: 'invalid_request_error', code: 'request_too_large', message: `The request body is larger than the gateway's limit of ${bodyLimit} bytes (BODY_LIMIT).`, errorType: 'client_too_large' })
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError({ statusCode: 415, type: 'invalid_request_error', code: 'unsupported_media_type', message: 'Unsupported Content-Type: send the body as JSON with "Content-Type: application/json".', errorType: 'client_invalid' })
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalidRequest('The request body is empty; send a JSON object.', null, 'invalid_json')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return invalidRequest('We could not parse the JSON body of your request: it is not valid JSON.', null, 'invalid_json')
  }
  return null
}

export function toGatewayError (error: FastifyError | Error, bodyLimit: number): GatewayError {
  if (error instanceof GatewayError) return error
  const fastifyError = error as FastifyError
  if (fastifyError.validation) return fromValidationErrors(fastifyError.validation, fastifyError.validationContext ?? 'body')
  // JSON nested thousands of levels deep parses, then overflows the stack wherever it is serialised again.
  if (error instanceof RangeError && /call stack/.test(error.message)) {
    return invalidRequest('The request body is nested too deeply.', null, 'nested_too_deeply')
  }
  const known = fromFastifyError(fastifyError, bodyLimit)
  if (known) return known
  const status = fastifyError.statusCode
  if (status && status >= 400 && status < 500) {
    return new GatewayError({ statusCode: status, type: 'invalid_request_error', message: error.message, errorType: 'client_invalid' })
  }
  return internalError()
}

export function sendError (reply: FastifyReply, error: GatewayError) {
  return reply
    .code(error.statusCode)
    .header('x-request-id', reply.request.id)
    .headers(error.headers)
    .header('x-gateway-error-source', error.source)
    .type('application/json; charset=utf-8')
    .send(error.toJSON())
}

/**
 * What anything thrown means for the answer, logged once: null when the client hung up and its upstream call was
 * aborted for it (nobody is left to answer, and nothing failed); else the GatewayError to answer with. 5xx details
 * stay in the log.
 */
export function settleError (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply, bodyLimit: number): GatewayError | null {
  if (reply.raw.destroyed && isAbort(error)) {
    request.log.info('upstream call aborted: the client closed the connection')
    return null
  }
  const gatewayError = toGatewayError(error, bodyLimit)
  if (gatewayError.errorType === 'gateway_internal') request.log.error({ err: error }, 'request failed')
  else if (gatewayError.source === 'upstream') request.log.warn({ status: gatewayError.statusCode, errorType: gatewayError.errorType, upstreamMessage: gatewayError.message }, 'upstream error')
  else request.log.info({ status: gatewayError.statusCode, code: gatewayError.code, param: gatewayError.param }, 'request rejected')
  return gatewayError
}

/** The single place where anything thrown becomes OpenAI's error envelope (the Anthropic routes have their own). */
export function errorHandler (bodyLimit: number) {
  return function handleError (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
    const gatewayError = settleError(error, request, reply, bodyLimit)
    return gatewayError ? sendError(reply, gatewayError) : reply
  }
}

export function notFoundHandler (request: FastifyRequest, reply: FastifyReply) {
  return sendError(reply, routeNotFound(request.method, request.url))
}

import type { Dispatcher } from 'undici'
import { errors } from 'undici'
import { GatewayError } from '../errors.ts'
import type { Target } from '../topology.ts'
import type { UpstreamCall, UpstreamClient } from './client.ts'
import { penaltyFor, refusedEverywhere } from '../adapters/upstream-errors.ts'
import { parseRetryAfter, type KeyLease } from './key-ring.ts'

export interface DispatchRequest {
  targets: Target[]
  call: Omit<UpstreamCall, 'body'>
  /** The body for a target: the model id may differ per target (aliases, fallbacks), and so may tool support. */
  payloadFor?: (model: string, nativeTools: boolean) => string | Buffer
  /** A conversation's identity: keeps it on one key while that key is usable. */
  affinity?: string
}

export interface Dispatched {
  response: Dispatcher.ResponseData
  client: UpstreamClient
  target: Target
  attempts: number
}

export interface DispatchOptions {
  maxAttempts: number
  /** No new attempt starts once this much time has passed since the first. */
  windowMs: number
  now?: () => number
  sleep?: (ms: number) => Promise<void>
  onRetry?: (upstream: string, reason: RetryReason) => void
}

export type RetryReason = 'rate_limit' | 'quota' | 'auth' | '5xx' | 'network'

interface Choice {
  target: Target
  client: UpstreamClient
  lease: KeyLease | null
}

/** 429 when every key that could serve the request is cooling down after rate limits: Retry-After is the true wait. */
function allKeysCooling (waitMs: number, model: string): GatewayError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000))
  return new GatewayError({
    statusCode: 429,
    type: 'rate_limit_error',
    code: 'upstream_keys_cooling_down',
    message: `Every upstream key for ${model} is cooling down after the upstream's rate limits; retry in ${seconds} s.`,
    source: 'upstream',
    headers: { 'retry-after': String(seconds), 'x-should-retry': 'true' },
    errorType: 'upstream_rate_limit'
  })
}

// A connection that could not be made can be retried at once elsewhere; a timeout waiting for an answer cannot,
// since the upstream may still be working on it and the client has already waited.
function isRetryableFailure (error: GatewayError): boolean {
  return error.errorType === 'upstream_network' || error.cause instanceof errors.ConnectTimeoutError
}

/**
 * Sends a request to the first target that has a usable key, and retries (only ever before anything reached
 * the client) on 429, 5xx, refusals and connection failures: on another key of the same upstream first, then on
 * the fallback targets, within `maxAttempts` and `windowMs`. What a failure says about a key (or about one model
 * on it) holds for every later request too.
 */
export function createDispatcher (clients: Map<string, UpstreamClient>, options: DispatchOptions) {
  const now = options.now ?? Date.now
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms)))

  function choose (targets: Target[], failures: Map<string, number>, affinity?: string): Choice | null {
    const order = targets
      .map((target, index) => ({ target, index, failed: failures.get(target.upstream) ?? 0 }))
      .sort((a, b) => a.failed - b.failed || a.index - b.index)
    for (const { target } of order) {
      const client = clients.get(target.upstream)!
      if (client.keys.keyless) return { target, client, lease: null }
      const lease = client.keys.pick(target.model, affinity)
      if (lease) return { target, client, lease }
    }
    return null
  }

  /**
   * Why nothing can serve the request now, or null when a key still could: rate limits somewhere make a 429 with
   * the true wait; refusals on every key make that refusal, for this request and every later one.
   */
  function unavailable (targets: Target[], model: string): GatewayError | null {
    let waitMs = Infinity
    let refusal: GatewayError | null = null
    for (const target of targets) {
      const client = clients.get(target.upstream)!
      const blocked = client.keys.blocked(target.model)
      if (blocked === null) return null
      if (blocked.kind === 'cooling') waitMs = Math.min(waitMs, blocked.waitMs)
      else refusal ??= refusedEverywhere(blocked.refusal, blocked.reason, target.model, client.context)
    }
    return waitMs === Infinity && refusal !== null ? refusal : allKeysCooling(waitMs === Infinity ? 0 : waitMs, model)
  }

  /** The last attempt's failure as the client sees it, once no more attempts will be made. */
  function finalError (error: GatewayError, targets: Target[], model: string): GatewayError {
    const rateLimited = error.errorType === 'upstream_rate_limit'
    if (!rateLimited && error.errorType !== 'upstream_auth' && error.errorType !== 'upstream_quota') return error
    const state = unavailable(targets, model)
    if (state === null) return error
    if (!rateLimited) return state
    error.headers['retry-after'] ??= state.headers['retry-after']
    return error
  }

  /** Records what the failure says about the key or upstream; returns why to retry, or null for no retry. */
  function judge (choice: Choice, error: GatewayError, response: Dispatcher.ResponseData | null, failures: Map<string, number>): RetryReason | null {
    const { lease, client, target } = choice
    const failTarget = () => failures.set(target.upstream, (failures.get(target.upstream) ?? 0) + 1)
    const penalty = penaltyFor(error)
    if (penalty !== null) {
      if (lease) client.keys.failed(lease, { ...penalty, retryAfterMs: parseRetryAfter(response?.headers['retry-after']) })
      else if (penalty.reason === 'refused' || penalty.reason === 'access_denied') return null
      else failTarget()
      return penalty.reason === 'rate_limited' ? 'rate_limit' : penalty.reason === 'quota' ? 'quota' : 'auth'
    }
    if (error.errorType === 'upstream_5xx' || (response === null && isRetryableFailure(error))) {
      failTarget()
      return error.errorType === 'upstream_5xx' ? '5xx' : 'network'
    }
    return null
  }

  return async function dispatch (request: DispatchRequest): Promise<Dispatched> {
    const started = now()
    const failures = new Map<string, number>()
    const model = request.targets[0]?.model ?? ''
    let lastError: GatewayError | null = null
    for (let attempt = 1; ; attempt++) {
      const choice = choose(request.targets, failures, request.affinity)
      if (!choice) throw lastError === null ? (unavailable(request.targets, model) ?? allKeysCooling(0, model)) : finalError(lastError, request.targets, model)
      let reason: RetryReason | null
      try {
        const body = request.payloadFor?.(choice.target.model, choice.client.context.nativeTools)
        const response = await choice.client.request({ ...request.call, body }, choice.lease?.entry ?? null)
        if (response.statusCode >= 200 && response.statusCode < 300) {
          if (choice.lease) choice.client.keys.succeeded(choice.lease)
          return { response, client: choice.client, target: choice.target, attempts: attempt }
        }
        lastError = await choice.client.errorFrom(response)
        reason = judge(choice, lastError, response, failures)
      } catch (error) {
        if (!(error instanceof GatewayError) || request.call.signal?.aborted) throw error
        lastError = error
        reason = judge(choice, error, null, failures)
      } finally {
        if (choice.lease) choice.client.keys.release(choice.lease)
      }
      const elapsed = now() - started
      if (reason === null || attempt >= options.maxAttempts || elapsed >= options.windowMs || request.call.signal?.aborted) {
        throw finalError(lastError, request.targets, model)
      }
      const next = choose(request.targets, failures, request.affinity)
      if (next === null) throw finalError(lastError, request.targets, model)
      if (next.lease) next.client.keys.release(next.lease)
      // A keyless upstream that says "slow down" would say it again at once; retry only somewhere else.
      if ((reason === 'rate_limit' || reason === 'quota') && next.target === choice.target && next.lease === null) throw lastError
      options.onRetry?.(choice.client.name, reason)
      if ((reason === '5xx' || reason === 'network') && next.target === choice.target) {
        // Same upstream again: give it a moment, with jitter so replicas do not retry in step.
        await sleep(Math.min(options.windowMs - elapsed, 100 * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)))
      }
    }
  }
}

import type { Dispatcher } from 'undici'
import { errors } from 'undici'
import { GatewayError } from '../errors.ts'
import type { Target } from '../topology.ts'
import type { UpstreamCall, UpstreamClient } from './client.ts'
import { parseRetryAfter, type KeyEntry } from './key-ring.ts'

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
  key: KeyEntry | null
}

const MAX_RETRY_AFTER_S = 60

/** 429 when every key that could serve the request is cooling down. */
function allKeysCooling (waitMs: number): GatewayError {
  const seconds = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(waitMs / 1000)))
  return new GatewayError({
    statusCode: 429,
    type: 'rate_limit_error',
    code: 'upstream_keys_cooling_down',
    message: `Every upstream key for this model is cooling down after rate limits or refusals; retry in ${seconds} s.`,
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
 * the client) on 429, 5xx and connection failures: on another key of the same upstream first, then on the
 * fallback targets, within `maxAttempts` and `windowMs`. Keys that fail are cooled down or set aside for
 * every later request too.
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
      if (client.keys.keyless) return { target, client, key: null }
      const key = client.keys.pick(affinity)
      if (key) return { target, client, key }
    }
    return null
  }

  function coolingFor (targets: Target[]): number {
    return Math.min(...targets.map(target => clients.get(target.upstream)!.keys.nextUsableIn()))
  }

  /** Records what the failure says about the key or upstream; returns why to retry, or null for no retry. */
  function judge (choice: Choice, error: GatewayError, response: Dispatcher.ResponseData | null, failures: Map<string, number>): RetryReason | null {
    const { key, client, target } = choice
    const failTarget = () => failures.set(target.upstream, (failures.get(target.upstream) ?? 0) + 1)
    switch (error.errorType) {
      case 'upstream_rate_limit':
        if (key) client.keys.rateLimited(key, parseRetryAfter(response?.headers['retry-after']))
        else failTarget()
        return 'rate_limit'
      case 'upstream_quota':
        if (key) client.keys.disabled(key, 'quota')
        else failTarget()
        return 'quota'
      case 'upstream_auth':
        if (!key) return null
        client.keys.disabled(key, 'refused')
        return 'auth'
      case 'upstream_5xx':
        failTarget()
        return '5xx'
      default:
        if (response === null && isRetryableFailure(error)) {
          failTarget()
          return 'network'
        }
        return null
    }
  }

  return async function dispatch (request: DispatchRequest): Promise<Dispatched> {
    const started = now()
    const failures = new Map<string, number>()
    let lastError: GatewayError | null = null
    for (let attempt = 1; ; attempt++) {
      const choice = choose(request.targets, failures, request.affinity)
      if (!choice) throw withRetryAfter(lastError, coolingFor(request.targets)) ?? allKeysCooling(coolingFor(request.targets))
      let reason: RetryReason | null
      try {
        const body = request.payloadFor?.(choice.target.model, choice.client.context.nativeTools)
        const response = await choice.client.request({ ...request.call, body }, choice.key)
        if (response.statusCode >= 200 && response.statusCode < 300) {
          if (choice.key) choice.client.keys.succeeded(choice.key)
          return { response, client: choice.client, target: choice.target, attempts: attempt }
        }
        lastError = await choice.client.errorFrom(response)
        reason = judge(choice, lastError, response, failures)
      } catch (error) {
        if (!(error instanceof GatewayError) || request.call.signal?.aborted) throw error
        lastError = error
        reason = judge(choice, error, null, failures)
      }
      const elapsed = now() - started
      if (reason === null || attempt >= options.maxAttempts || elapsed >= options.windowMs || request.call.signal?.aborted) {
        throw reason === 'rate_limit' ? withRetryAfter(lastError, coolingFor(request.targets)) : lastError
      }
      const next = choose(request.targets, failures, request.affinity)
      // A keyless upstream that says "slow down" would say it again at once; retry only somewhere else.
      if ((reason === 'rate_limit' || reason === 'quota') && next?.target === choice.target && next.key === null) throw lastError
      options.onRetry?.(choice.client.name, reason)
      if ((reason === '5xx' || reason === 'network') && next?.target === choice.target) {
        // Same upstream again: give it a moment, with jitter so replicas do not retry in step.
        await sleep(Math.min(options.windowMs - elapsed, 100 * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)))
      }
    }
  }
}

/** A rate-limit error tells the client when a key will be usable again, if the upstream did not. */
function withRetryAfter (error: GatewayError | null, waitMs: number): GatewayError | null {
  if (!error || error.errorType !== 'upstream_rate_limit' || error.headers['retry-after']) return error
  error.headers['retry-after'] = String(Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(waitMs / 1000))))
  return error
}

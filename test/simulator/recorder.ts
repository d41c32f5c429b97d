import { EventEmitter } from 'node:events'
import type { RecordedRequest, SimulatorEvent } from './types.ts'

interface Waiter {
  resolve (rec: RecordedRequest): void
  reject (err: Error): void
  timer: NodeJS.Timeout
}

const EVENTS: SimulatorEvent[] = ['request', 'client-closed', 'finished']

/**
 * Events plus a queue per event, so `waitFor` also returns an event that fired before
 * it was called: each call takes the oldest record not yet returned for that event.
 */
export class Recorder {
  readonly events = new EventEmitter()
  readonly #backlog = new Map<SimulatorEvent, RecordedRequest[]>(EVENTS.map((name) => [name, []]))
  readonly #waiters = new Map<SimulatorEvent, Waiter[]>(EVENTS.map((name) => [name, []]))

  emit (name: SimulatorEvent, rec: RecordedRequest): void {
    this.events.emit(name, rec)
    const waiter = this.#waiters.get(name)?.shift()
    if (waiter === undefined) {
      this.#backlog.get(name)?.push(rec)
      return
    }
    clearTimeout(waiter.timer)
    waiter.resolve(rec)
  }

  waitFor (name: SimulatorEvent, timeoutMs = 2000): Promise<RecordedRequest> {
    const waiters = this.#waiters.get(name)
    if (waiters === undefined) return Promise.reject(new TypeError(`simulator: unknown event '${name}'`))
    const ready = this.#backlog.get(name)?.shift()
    if (ready !== undefined) return Promise.resolve(ready)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error(`simulator: no '${name}' event within ${timeoutMs} ms`))
        }, timeoutMs)
      }
      waiters.push(waiter)
    })
  }

  /** Pending waits fail at once rather than keep a closed test alive until their timeout. */
  rejectAll (reason: Error): void {
    for (const waiters of this.#waiters.values()) {
      for (const waiter of waiters.splice(0)) {
        clearTimeout(waiter.timer)
        waiter.reject(reason)
      }
    }
  }
}

import { startSimulator } from '../test/simulator/index.ts'
import type { Scenario, Simulator } from '../test/simulator/index.ts'

// The upstream simulator in a process of its own, so its CPU is never counted with a target's.
// Started by bench/run.ts over IPC; it reports { port } once listening and exits when the parent goes away.
// Settings (environment): BENCH_SIM_TOKENS words per answer (each one streamed chunk), BENCH_SIM_INTERVAL_MS
// between chunks, BENCH_SIM_FIRST_CHUNK_DELAY_MS before the first, BENCH_SIM_PORT (0: any free port).

const num = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback)
  return Number.isFinite(value) && value >= 0 ? value : fallback
}

/** `tokens` words; the simulator streams one word (plus its trailing space) per chunk. */
function replyOf (tokens: number): string {
  const words: string[] = []
  for (let i = 0; i < tokens; i++) words.push(`tok${i % 10}`)
  return words.join(' ')
}

const defaults: Scenario = {
  reply: replyOf(Math.max(1, Math.floor(num('BENCH_SIM_TOKENS', 20)))),
  intervalMs: num('BENCH_SIM_INTERVAL_MS', 0),
  firstChunkDelayMs: num('BENCH_SIM_FIRST_CHUNK_DELAY_MS', 0)
}

const sim: Simulator = await startSimulator({ host: '127.0.0.1', port: num('BENCH_SIM_PORT', 0), defaults })

// The simulator is a test double: it keeps every request for assertions. A benchmark sends hundreds of
// thousands, so drop those records as they come (bounded memory, and no GC pressure growing with the run).
const trim = setInterval(() => { sim.requests.length = 0 }, 500)
const state = { closing: false }
for (const event of ['request', 'finished', 'client-closed'] as const) drain(event)

/** Takes the recorder's queued events (kept for `waitFor`) so they do not pile up; stops on close. */
async function drain (event: 'request' | 'finished' | 'client-closed') {
  while (!state.closing) {
    try {
      await sim.waitFor(event, 3_600_000)
    } catch {
      // closed, or an hour without such an event
    }
  }
}

async function close () {
  if (state.closing) return
  state.closing = true
  clearInterval(trim)
  await sim.close().catch(() => {})
  process.exit(0)
}

process.on('disconnect', close)
process.on('SIGTERM', close)
process.on('SIGINT', close)
if (process.send) process.send({ port: Number(new URL(sim.origin).port) })
else console.log(`bench simulator listening at ${sim.url}`)

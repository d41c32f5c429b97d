import { startSimulator } from './index.ts'

// `npm run simulator`: a DashScope stand-in for manual runs of the gateway.
const port = Number(process.env.SIMULATOR_PORT ?? 8787)
const host = process.env.SIMULATOR_HOST ?? '127.0.0.1'
const apiKeys = (process.env.SIMULATOR_API_KEYS ?? '').split(',').map((key) => key.trim()).filter(Boolean)

const sim = await startSimulator({ host, port, apiKeys })
console.log(`Qwen upstream simulator (a test double, not a model) listening at ${sim.url}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    sim.close().catch((err: unknown) => {
      console.error(err)
      process.exitCode = 1
    })
  })
}

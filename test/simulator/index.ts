import { createServer } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { RecordedRequest, Simulator, SimulatorConfig, SimulatorOptions } from './types.ts'
import { handleChat } from './chat.ts'
import { handleEmbeddings } from './embeddings.ts'
import { errorReply, notFoundReply, wrappedReply } from './errors.ts'
import { createExchange } from './exchange.ts'
import type { Exchange } from './exchange.ts'
import { handleModels } from './models.ts'
import { Recorder } from './recorder.ts'
import { sendError } from './reply.ts'

export type {
  ErrorName,
  Framing,
  HugeFrame,
  MalformedFrame,
  MalformedKind,
  RecordedRequest,
  Scenario,
  ScenarioOverride,
  Simulator,
  SimulatorEvent,
  SimulatorOptions,
  ToolCallSpec
} from './types.ts'

const DEFAULT_MODELS = ['qwen-plus', 'qwen-flash', 'qwen-turbo', 'qwen3-max', 'qwen3-coder-plus', 'qwq-plus']

/** Upstream test double imitating DashScope's OpenAI-compatible mode (wire contract 1 and 5). */
export async function startSimulator (options: SimulatorOptions = {}): Promise<Simulator> {
  const config: SimulatorConfig = {
    apiKeys: options.apiKeys ?? [],
    models: options.models ?? DEFAULT_MODELS,
    modelsStatus: options.modelsStatus,
    strictModels: options.strictModels ?? true,
    defaults: options.defaults ?? {},
    override: null,
    chatCount: 0
  }
  const recorder = new Recorder()
  const requests: RecordedRequest[] = []
  const live = new Set<AbortController>()
  let closing = false

  const server = createServer((req, res) => {
    const controller = new AbortController()
    live.add(controller)
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      raw: '',
      body: undefined,
      startedAt: performance.now()
    }
    requests.push(rec)
    const ex = createExchange(req, res, rec, controller.signal)
    res.once('finish', () => {
      rec.finishedAt = performance.now()
      recorder.emit('finished', rec)
    })
    res.once('close', () => {
      // Closed before the answer was complete, and not by the simulator: the client went away.
      if (!res.writableFinished && !ex.selfClosed && !closing) {
        rec.clientClosedAt = performance.now()
        recorder.emit('client-closed', rec)
      }
      controller.abort()
      live.delete(controller)
    })
    handle(ex, config, recorder).catch((err: unknown) => {
      // A write that failed because the client closed the socket: its 'close' (client-closed) is on the way.
      if (controller.signal.aborted || req.socket.destroyed) return
      if (res.headersSent) return ex.destroy()
      sendError(ex, wrappedReply(500, 'InternalError', `Simulator failure: ${String(err)}`, ex.requestId, 'InternalError'))
    })
  })

  // A real upstream does not drop a burst of connections: a backlog above Node's 511, as the gateway has.
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1', 4096)
  await once(server, 'listening')
  const { address, port } = server.address() as AddressInfo
  const host = address.includes(':') ? `[${address}]` : address
  const origin = `http://${host}:${port}`

  return {
    url: `${origin}/v1`,
    origin,
    requests,
    events: recorder.events,
    waitFor: (event, timeoutMs) => recorder.waitFor(event, timeoutMs),
    setOverride (override) {
      config.override = override
    },
    async close () {
      closing = true
      for (const controller of live) controller.abort()
      recorder.rejectAll(new Error('simulator closed'))
      const closed = once(server, 'close')
      server.close()
      // Also the open and stalled streams, so close() never waits on a client.
      server.closeAllConnections()
      await closed
    }
  }
}

async function handle (ex: Exchange, config: SimulatorConfig, recorder: Recorder): Promise<void> {
  ex.rec.raw = await readBody(ex.req)
  ex.rec.body = parseJson(ex.rec.raw)
  recorder.emit('request', ex.rec)
  if (!authorized(ex.req, config.apiKeys)) return sendError(ex, errorReply('invalid_api_key', ex.requestId))
  const path = ex.rec.path.split('?')[0]
  if (ex.req.method === 'GET' && path === '/v1/models') return handleModels(ex, config)
  if (ex.req.method === 'POST' && path === '/v1/chat/completions') return handleChat(ex, config)
  if (ex.req.method === 'POST' && path === '/v1/embeddings') return handleEmbeddings(ex, config)
  sendError(ex, notFoundReply(ex.rec.method, path, ex.requestId))
}

function authorized (req: IncomingMessage, apiKeys: string[]): boolean {
  if (apiKeys.length === 0) return true
  const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
  return match !== null && apiKeys.includes(match[1])
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

function parseJson (raw: string): unknown {
  try {
    return raw === '' ? undefined : JSON.parse(raw)
  } catch {
    return undefined
  }
}

import type { RecordedRequest, Scenario, ScenarioOverride } from '../../simulator/index.ts'

// The simulator answers every chat request from its scenario; setOverride lets a test pick the scenario from the
// request the gateway sent upstream. A tool round trip needs two answers from one conversation: a tool call while
// the conversation has no tool result yet, and then a text built from that result. Nothing is added to the
// simulator for this: the override reads the translated chat messages.

/** The chat messages of an upstream request (after the gateway translated the client's request). */
export function chatMessages (request: RecordedRequest): any[] {
  const messages = request.body?.messages
  return Array.isArray(messages) ? messages : []
}

/** The text of a message's content: a string, or the text of its parts. */
export function textOf (content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  return content.map(part => typeof part?.text === 'string' ? part.text : '').join('')
}

/** The contents of the `tool` messages, oldest first. */
export function toolResults (request: RecordedRequest): string[] {
  return chatMessages(request).filter(message => message?.role === 'tool').map(message => textOf(message.content))
}

/** The function names the upstream request offers. */
export function offeredTools (request: RecordedRequest): string[] {
  const tools = request.body?.tools
  if (!Array.isArray(tools)) return []
  return tools.map(tool => tool?.function?.name).filter((name): name is string => typeof name === 'string')
}

/** The chat requests the simulator received. */
export const chatRequests = (requests: RecordedRequest[]) =>
  requests.filter(request => request.method === 'POST' && request.path.split('?')[0] === '/v1/chat/completions')

export interface ToolTurn {
  /** The tool the model calls: its chat name as the gateway offers it upstream. */
  name: string
  /** The call's arguments, a JSON text. */
  arguments: string
  /** The final answer, given the last tool result the conversation holds. */
  answer (toolResult: string): string
  /** Answer to a request that offers no such tool (a client's side request: a title, a summary ...). */
  otherwise?: string
}

/**
 * A model that calls one tool and then answers from its result: a tool call while the conversation has no tool
 * result, else a text built from the last result. A request that does not offer the tool gets `otherwise`.
 */
export function toolRoundTrip (turn: ToolTurn): ScenarioOverride {
  return (request): Scenario | undefined => {
    const results = toolResults(request)
    if (results.length > 0) return { reply: turn.answer(results[results.length - 1]) }
    if (offeredTools(request).includes(turn.name)) return { toolCalls: [{ name: turn.name, arguments: turn.arguments }] }
    return turn.otherwise === undefined ? undefined : { reply: turn.otherwise }
  }
}

/**
 * The gateway's settings for these tests: a required client key (each client's way of sending one is checked too),
 * and no load shedding. Loading a client SDK or starting a CLI on a busy two-core machine can hold the event loop
 * for more than the default 1000 ms, and a 503/529 "overloaded" would then fail a test that is about the wire.
 */
export const clientTestEnv = (key: string) => ({ GATEWAY_API_KEYS: key, LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' })

import type { Plan, PlannedCall } from './plan.ts'
import { usageJson } from './plan.ts'
import type { Framing } from './types.ts'

/** One chat.completion.chunk; `counts` marks chunks that carry generated text (for midStreamAfter). */
export interface ChunkEvent {
  data: Record<string, unknown>
  counts: boolean
}

type Delta = Record<string, unknown>

interface ChoiceBuilder {
  chunk (delta: Delta, finishReason: string | null): Record<string, unknown>
  /** The role goes into the first delta of each choice only. */
  withRole (delta: Delta): Delta
}

export interface ChunkOptions {
  toolCallQuirks: boolean
  toolCallsNameLate?: boolean
  framing: Framing
}

/** Chunks of all choices, interleaved: choice 0 and 1 of each step, then the next step. */
export function buildChunks (plan: Plan, options: ChunkOptions): ChunkEvent[] {
  const perChoice: ChunkEvent[][] = []
  for (let index = 0; index < plan.n; index++) perChoice.push(choiceChunks(plan, options, index))
  const out: ChunkEvent[] = []
  for (let step = 0; step < perChoice[0].length; step++) {
    for (const events of perChoice) out.push(events[step])
  }
  return out
}

/** Final usage chunk: `choices: []`, same id (contract 1.5, 2.2). */
export function usageChunk (plan: Plan): Record<string, unknown> {
  return { ...chunkBase(plan), choices: [], usage: usageJson(plan.usage, true) }
}

/** Harmless empty delta, for the "data after [DONE]" fault. */
export function strayChunk (plan: Plan): Record<string, unknown> {
  return { ...chunkBase(plan), usage: null, choices: [{ index: 0, delta: { content: '' }, logprobs: null, finish_reason: null }] }
}

function chunkBase (plan: Plan): Record<string, unknown> {
  return { id: plan.id, object: 'chat.completion.chunk', created: plan.created, model: plan.model }
}

function choiceChunks (plan: Plan, options: ChunkOptions, index: number): ChunkEvent[] {
  const base = chunkBase(plan)
  const extras = (delta: Delta): Delta => options.framing.extraNulls === true ? withExtraNulls(delta) : delta
  let rolePending = true
  const builder: ChoiceBuilder = {
    chunk: (delta, finishReason) => ({
      ...base,
      usage: null,
      choices: [{ index, delta: extras(delta), logprobs: null, finish_reason: finishReason }]
    }),
    withRole (delta) {
      if (!rolePending) return delta
      rolePending = false
      return { role: 'assistant', ...delta }
    }
  }
  const events = reasoningChunks(plan, builder)
  if (plan.toolCalls !== undefined) {
    const tools = options.toolCallsNameLate
      ? nameLateToolChunks(plan.toolCalls, builder)
      : options.toolCallQuirks
        ? quirkyToolChunks(plan.toolCalls, builder, (delta) => ({ ...base, usage: null, choices: [{ delta: extras(delta), index }] }))
        : cleanToolChunks(plan.toolCalls, builder)
    return events.concat(tools)
  }
  return events.concat(textChunks(plan, options.framing, builder))
}

// Thinking stream: reasoning first, the idle `content` null (contract 1.5).
function reasoningChunks (plan: Plan, choice: ChoiceBuilder): ChunkEvent[] {
  const pieces = plan.reasoning?.pieces ?? []
  return pieces.map((piece) => ({
    counts: true,
    data: choice.chunk(choice.withRole({ content: null, [plan.reasoningField]: piece }), null)
  }))
}

function textChunks (plan: Plan, framing: Framing, choice: ChoiceBuilder): ChunkEvent[] {
  const thinking = plan.reasoning !== undefined
  const idle: Delta = thinking ? { [plan.reasoningField]: null } : {}
  const events: ChunkEvent[] = []
  // Plain answers open with a separate role chunk whose content is "" (contract 1.5).
  if (!thinking) events.push({ counts: false, data: choice.chunk(choice.withRole({ content: '' }), null) })
  let soFar = ''
  for (const piece of plan.content.pieces) {
    soFar += piece
    // Cumulative fault: every delta repeats the text so far (Roo's qwen-code provider strips it).
    const content = framing.cumulative === true ? soFar : piece
    events.push({ counts: true, data: choice.chunk(choice.withRole({ content, ...idle }), null) })
  }
  events.push({ counts: false, data: choice.chunk(choice.withRole({ content: '', ...idle }), 'stop') })
  return events
}

/**
 * DashScope's tool-call stream (contract 1.5, captured from qwen-plus): name and first
 * argument fragment share a chunk, continuations repeat `"id":""` and `"type":"function"`,
 * a trailing chunk has `arguments:null` and no finish_reason/logprobs keys.
 */
function quirkyToolChunks (
  calls: PlannedCall[],
  choice: ChoiceBuilder,
  bareChunk: (delta: Delta) => Record<string, unknown>
): ChunkEvent[] {
  const events: ChunkEvent[] = []
  calls.forEach((call, index) => {
    const fragments = call.fragments.length > 0 ? call.fragments : ['']
    fragments.forEach((fragment, i) => {
      const toolCall = i === 0
        ? { index, id: call.id, type: 'function', function: { name: call.name, arguments: fragment } }
        : { index, id: '', type: 'function', function: { arguments: fragment } }
      events.push({ counts: fragment !== '', data: choice.chunk(choice.withRole({ content: null, tool_calls: [toolCall] }), null) })
    })
  })
  const trailing = { index: calls.length - 1, id: '', type: 'function', function: { arguments: null } }
  events.push({ counts: false, data: bareChunk({ tool_calls: [trailing] }) })
  events.push({ counts: false, data: choice.chunk({}, 'tool_calls') })
  return events
}

/** No id or name in a call's first delta; they come with the second; later deltas carry empty names. */
function nameLateToolChunks (calls: PlannedCall[], choice: ChoiceBuilder): ChunkEvent[] {
  const events: ChunkEvent[] = []
  calls.forEach((call, index) => {
    const fragments = call.fragments.length > 1 ? call.fragments : [...call.fragments, '']
    fragments.forEach((fragment, i) => {
      const fn = i === 1 ? { name: call.name, arguments: fragment } : i === 0 ? { arguments: fragment } : { name: '', arguments: fragment }
      const toolCall = i === 1 ? { index, id: call.id, type: 'function', function: fn } : { index, id: null, function: fn }
      events.push({ counts: fragment !== '', data: choice.chunk(choice.withRole({ content: null, tool_calls: [toolCall] }), null) })
    })
  })
  events.push({ counts: false, data: choice.chunk({}, 'tool_calls') })
  return events
}

/** OpenAI's shape (contract 2.2): a header delta with `arguments: ""`, then bare fragments. */
function cleanToolChunks (calls: PlannedCall[], choice: ChoiceBuilder): ChunkEvent[] {
  const events: ChunkEvent[] = []
  calls.forEach((call, index) => {
    const header = { index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }
    events.push({ counts: false, data: choice.chunk(choice.withRole({ content: null, tool_calls: [header] }), null) })
    for (const fragment of call.fragments) {
      events.push({ counts: true, data: choice.chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }, null) })
    }
  })
  events.push({ counts: false, data: choice.chunk({}, 'tool_calls') })
  return events
}

// Some DashScope versions add these to every delta (contract 1.5).
function withExtraNulls (delta: Delta): Delta {
  return { ...delta, function_call: null, refusal: null, tool_calls: delta.tool_calls ?? null }
}

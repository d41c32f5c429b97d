// Checks a Responses event stream against wire-apis §1.5: created → in_progress → items (added, content events,
// done) → exactly one terminal event with the whole output and usage; `event:` equal to `data.type` on every frame;
// sequence numbers 0, 1, 2 ...; content events name an open item by output_index and item_id; no event type outside
// the grammar (openai-node throws on unknown types, wire-apis §0). Returns the problems.

export interface Frame {
  event?: string
  data: string
}

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed'])

/** Every event type §1.5 allows (with §1.9's reasoning events, §1.10's custom tool input and §0's keepalive). */
export const EVENT_TYPES: ReadonlySet<string> = new Set([
  'response.created',
  'response.in_progress',
  'response.output_item.added',
  'response.output_item.done',
  'response.content_part.added',
  'response.content_part.done',
  'response.output_text.delta',
  'response.output_text.done',
  'response.function_call_arguments.delta',
  'response.function_call_arguments.done',
  'response.custom_tool_call_input.delta',
  'response.custom_tool_call_input.done',
  'response.reasoning_summary_part.added',
  'response.reasoning_summary_part.done',
  'response.reasoning_summary_text.delta',
  'response.reasoning_summary_text.done',
  'response.reasoning_text.delta',
  'response.reasoning_text.done',
  ...TERMINAL,
  'keepalive'
])

export function grammarProblems (frames: Frame[]): string[] {
  const problems: string[] = []
  const items: Array<{ id: string, done: boolean }> = []
  let terminal = 0
  frames.forEach((frame, i) => {
    const event = JSON.parse(frame.data)
    const where = `event ${i} (${event.type})`
    if (!EVENT_TYPES.has(event.type)) problems.push(`${where}: not an event type of the grammar`)
    if (frame.event !== event.type) problems.push(`${where}: "event: ${frame.event}" differs from data.type`)
    if (event.sequence_number !== i) problems.push(`${where}: sequence_number ${event.sequence_number}, expected ${i}`)
    if (i === 0 && event.type !== 'response.created') problems.push('the first event is not response.created')
    if (i === 1 && event.type !== 'response.in_progress') problems.push('the second event is not response.in_progress')
    if (terminal > 0) problems.push(`${where}: after the terminal event`)
    if (TERMINAL.has(event.type)) {
      terminal++
      if (!Array.isArray(event.response?.output)) problems.push(`${where}: no output array`)
      else if (event.response.output.length !== items.length) problems.push(`${where}: output has ${event.response.output.length} items, ${items.length} were added`)
      if (event.response?.usage == null) problems.push(`${where}: no usage`)
      if ('output_text' in (event.response ?? {})) problems.push(`${where}: output_text must not be sent`)
      return
    }
    if (event.type === 'response.output_item.added') {
      if (event.output_index !== items.length) problems.push(`${where}: output_index ${event.output_index}, expected ${items.length}`)
      items.push({ id: event.item.id, done: false })
      return
    }
    if (event.type === 'response.output_item.done') {
      const item = items[event.output_index]
      if (!item || item.done || item.id !== event.item.id) problems.push(`${where}: done for an item that is not open`)
      else item.done = true
      return
    }
    if ('output_index' in event) {
      const item = items[event.output_index]
      if (!item || item.done) problems.push(`${where}: for an item that is not open`)
      else if (event.item_id !== item.id) problems.push(`${where}: item_id ${event.item_id}, expected ${item.id}`)
    }
  })
  if (terminal !== 1) problems.push(`${terminal} terminal events`)
  return problems
}

/** Frames as the writer produced them (text with `event:` and `data:` lines). */
export function framesOf (text: string): Frame[] {
  return text.split('\n\n').filter(block => block.trim() !== '' && !block.startsWith(':')).map(block => {
    const frame: Frame = { data: '' }
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) frame.event = line.slice(7)
      else if (line.startsWith('data: ')) frame.data = line.slice(6)
    }
    return frame
  })
}

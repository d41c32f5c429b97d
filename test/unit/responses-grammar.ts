// Checks a Responses event stream against wire-apis §1.5: created → in_progress → items (added, content events,
// done) → exactly one terminal event with the whole output and usage; `event:` equal to `data.type` on every frame;
// sequence numbers 0, 1, 2 ...; content events name an open item by output_index and item_id. Returns the problems.

export interface Frame {
  event?: string
  data: string
}

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed'])

export function grammarProblems (frames: Frame[]): string[] {
  const problems: string[] = []
  const items: Array<{ id: string, done: boolean }> = []
  let terminal = 0
  frames.forEach((frame, i) => {
    const event = JSON.parse(frame.data)
    const where = `event ${i} (${event.type})`
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

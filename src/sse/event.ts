// The few SSE events the gateway writes itself, and a reader for the frames it must look into.

export const DONE_EVENT = 'data: [DONE]\n\n'

export const dataEvent = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`

export interface ParsedEvent {
  event: string | null
  data: string | null
}

/** Reads one frame's `event:` and `data:` fields (multi-line data joined by \n, per the SSE spec). */
export function parseEvent (frame: Buffer | string): ParsedEvent {
  let event: string | null = null
  let data: string | null = null
  for (const line of frame.toString().split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') event = value
    else if (field === 'data') data = data === null ? value : `${data}\n${value}`
  }
  return { event, data }
}

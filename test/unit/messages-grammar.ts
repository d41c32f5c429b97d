// The §2.5 stream grammar as a checker, shared by the writer's unit tests and the route tests over HTTP.

export interface Frame {
  event?: string
  data: string
}

export interface Block {
  type: string
  text?: string
  thinking?: string
  signature?: string
  id?: string
  name?: string
  json?: string
}

export interface Checked {
  problems: string[]
  blocks: Block[]
  stopReason: string | null
  usage: Record<string, number> | null
  error: any
}

/** Splits SSE text into frames (event + data lines). */
export function parseFrames (text: string): Frame[] {
  return text.split('\n\n').filter(block => block.trim() !== '').map(block => {
    const frame: Frame = { data: '' }
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) frame.event = line.slice(7)
      else if (line.startsWith('data: ')) frame.data += line.slice(6)
    }
    return frame
  })
}

/** Everything the Anthropic SDKs and Claude Code require of a stream, as a list of what is wrong (empty when fine). */
export function checkGrammar (frames: Frame[]): Checked {
  const problems: string[] = []
  const blocks: Block[] = []
  let open: number | null = null
  let started = false
  let stopped = false
  let stopReason: string | null = null
  let usage: Record<string, number> | null = null
  let error: any = null
  frames.forEach((frame, position) => {
    const data = JSON.parse(frame.data)
    if (frame.event !== data.type) problems.push(`frame ${position}: event ${frame.event} for data type ${data.type}`)
    if (stopped) problems.push(`frame ${position}: ${data.type} after message_stop`)
    if (error) problems.push(`frame ${position}: ${data.type} after error`)
    switch (data.type) {
      case 'message_start':
        if (started) problems.push('second message_start')
        started = true
        if (!Array.isArray(data.message.content)) problems.push('message_start without content array')
        if (typeof data.message.usage?.input_tokens !== 'number') problems.push('message_start without usage.input_tokens')
        break
      case 'ping':
        if (!started) problems.push('ping before message_start')
        break
      case 'content_block_start':
        if (!started) problems.push('block before message_start')
        if (open !== null) problems.push(`block ${data.index} started while ${open} is open`)
        if (data.index !== blocks.length) problems.push(`block index ${data.index}, expected ${blocks.length}`)
        open = data.index
        blocks.push({ ...data.content_block, json: data.content_block.type === 'tool_use' ? '' : undefined })
        break
      case 'content_block_delta': {
        if (data.index !== open) {
          problems.push(`delta for block ${data.index} while ${open} is open`)
          break
        }
        const block = blocks[data.index]
        const delta = data.delta
        const expected: Record<string, string[]> = { text: ['text_delta'], thinking: ['thinking_delta', 'signature_delta'], tool_use: ['input_json_delta'] }
        if (!expected[block.type]?.includes(delta.type)) problems.push(`${delta.type} in a ${block.type} block`)
        if (delta.type === 'text_delta') block.text += delta.text
        if (delta.type === 'thinking_delta') block.thinking += delta.thinking
        if (delta.type === 'signature_delta') block.signature += delta.signature
        if (delta.type === 'input_json_delta') block.json += delta.partial_json
        break
      }
      case 'content_block_stop':
        if (data.index !== open) problems.push(`stop for block ${data.index} while ${open} is open`)
        else {
          const block = blocks[data.index]
          if (block.type === 'text' && block.text!.trim() === '') problems.push(`empty text block ${data.index}`)
          if (block.type === 'tool_use') {
            try {
              JSON.parse(block.json === '' ? '{}' : block.json!)
            } catch {
              problems.push(`tool block ${data.index} arguments are not JSON: ${block.json}`)
            }
          }
        }
        open = null
        break
      case 'message_delta':
        if (open !== null) problems.push(`message_delta while block ${open} is open`)
        stopReason = data.delta.stop_reason
        usage = data.usage
        for (const key of ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens']) {
          if (typeof data.usage?.[key] !== 'number') problems.push(`message_delta.usage.${key} missing`)
        }
        break
      case 'message_stop':
        if (stopReason === null) problems.push('message_stop without a stop reason')
        stopped = true
        break
      case 'error':
        error = data
        break
      default:
        problems.push(`unknown event type ${data.type}`)
    }
  })
  if (!stopped && !error) problems.push('no message_stop')
  return { problems, blocks, stopReason, usage, error }
}

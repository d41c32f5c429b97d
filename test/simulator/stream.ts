import type { Exchange } from './exchange.ts'
import type { Plan } from './plan.ts'
import type { Framing, Scenario } from './types.ts'
import { buildChunks, strayChunk, usageChunk } from './chunks.ts'
import { eventErrorFrame, inspectionFrame } from './errors.ts'
import { dashscopeHeaders } from './reply.ts'

type Frame = { data: string, event?: string } | { reset: true }

const SPLIT_GAP_MS = 5

export async function streamAnswer (ex: Exchange, plan: Plan, scenario: Scenario, includeUsage: boolean): Promise<void> {
  const frames = streamFrames(ex.requestId, plan, scenario, includeUsage)
  ex.head(200, {
    ...dashscopeHeaders(ex),
    'content-type': 'text/event-stream;charset=UTF-8',
    'cache-control': 'no-cache'
  })
  ex.res.flushHeaders()
  await writeFrames(ex, frames, scenario)
}

/** The whole stream as a list: chunks, an optional mid-stream fault, usage chunk, [DONE]. */
function streamFrames (requestId: string, plan: Plan, scenario: Scenario, includeUsage: boolean): Frame[] {
  const framing = scenario.framing ?? {}
  const chunks = buildChunks(plan, { toolCallQuirks: scenario.toolCallQuirks ?? true, toolCallsNameLate: scenario.toolCallsNameLate ?? false, framing })
  const faultAfter = scenario.midStreamAfter ?? 2
  const frames: Frame[] = []
  let counted = 0
  for (const chunk of chunks) {
    if (scenario.midStream !== undefined && counted >= faultAfter) break
    frames.push({ data: JSON.stringify(chunk.data) })
    if (chunk.counts) counted++
  }
  if (scenario.midStream === 'inspection') return [...frames, { data: inspectionFrame(requestId) }]
  if (scenario.midStream === 'event_error') return [...frames, { event: 'error', data: eventErrorFrame() }]
  if (scenario.midStream === 'reset') return [...frames, { reset: true }]
  if (includeUsage) frames.push({ data: JSON.stringify(usageChunk(plan)) })
  if (framing.noDone !== true) frames.push({ data: '[DONE]' })
  if (framing.dataAfterDone === true) frames.push({ data: JSON.stringify(strayChunk(plan)) })
  return frames
}

async function writeFrames (ex: Exchange, frames: Frame[], scenario: Scenario): Promise<void> {
  const framing = scenario.framing ?? {}
  if (scenario.stall === 'after_first') {
    await ex.sleep(scenario.firstChunkDelayMs)
    await ex.write(format(frames[0], framing))
    return ex.stall()
  }
  if (framing.batched === true) {
    await ex.sleep(scenario.firstChunkDelayMs)
    const resetAt = frames.findIndex((frame) => 'reset' in frame)
    const sent = resetAt < 0 ? frames : frames.slice(0, resetAt)
    await ex.write(sent.map((frame) => format(frame, framing)).join(''))
    return resetAt < 0 ? ex.end() : ex.destroy()
  }
  for (let i = 0; i < frames.length; i++) {
    await ex.sleep(i === 0 ? scenario.firstChunkDelayMs : scenario.intervalMs)
    const frame = frames[i]
    // Reset: destroy the socket without the terminating zero-length chunk.
    if ('reset' in frame) return ex.destroy()
    const text = format(frame, framing)
    if (framing.splitJson === true) {
      const [head, tail] = splitInJson(Buffer.from(text))
      await ex.write(head)
      await ex.sleep(SPLIT_GAP_MS)
      await ex.write(tail)
    } else {
      await ex.write(text)
    }
  }
  ex.end()
}

function format (frame: Frame, framing: Framing): string {
  if ('reset' in frame) return ''
  const nl = framing.crlf === true ? '\r\n' : '\n'
  const ping = framing.comments === true ? `: ping${nl}${nl}` : ''
  const event = frame.event === undefined ? '' : `event: ${frame.event}${nl}`
  return `${ping}${event}data: ${frame.data}${nl}${nl}`
}

/** Two writes split inside the JSON; inside a multibyte UTF-8 character when there is one. */
function splitInJson (bytes: Buffer): [Buffer, Buffer] {
  const start = bytes.indexOf('data: ') + 'data: '.length
  let end = start
  while (end < bytes.length && bytes[end] !== 0x0a && bytes[end] !== 0x0d) end++
  let cut = start + Math.floor((end - start) / 2)
  for (let i = start; i < end; i++) {
    // 0xC0 and above starts a multibyte sequence: cut right after its first byte.
    if (bytes[i] >= 0xc0) {
      cut = i + 1
      break
    }
  }
  return [bytes.subarray(0, cut), bytes.subarray(cut)]
}

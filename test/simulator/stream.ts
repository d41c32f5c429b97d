import type { Exchange } from './exchange.ts'
import type { Plan } from './plan.ts'
import type { Framing, HugeFrame, Scenario } from './types.ts'
import { buildChunks, strayChunk, usageChunk } from './chunks.ts'
import { eventErrorFrame, inspectionFrame } from './errors.ts'
import { malformedData, paddingChunks, spacedJson, writeHugeFrame, type Json } from './hostile.ts'
import { dashscopeHeaders } from './reply.ts'

/** `delayMs` replaces the scenario's interval before this frame. */
type Frame = { data: string, event?: string, delayMs?: number } | { reset: true } | { huge: HugeFrame }

const SPLIT_GAP_MS = 5
// Padding and broken events each go in a write of their own, so the gateway reads them apart.
const HOSTILE_GAP_MS = 10

export async function streamAnswer (ex: Exchange, plan: Plan, scenario: Scenario, includeUsage: boolean): Promise<void> {
  const frames = streamFrames(ex.requestId, plan, scenario, includeUsage)
  ex.head(200, {
    ...dashscopeHeaders(ex),
    'content-type': 'text/event-stream;charset=UTF-8',
    'cache-control': 'no-cache'
  })
  ex.res.flushHeaders()
  await writeFrames(ex, frames, scenario, plan)
}

/** The whole stream as a list: chunks, an optional mid-stream fault, usage chunk, [DONE]. */
function streamFrames (requestId: string, plan: Plan, scenario: Scenario, includeUsage: boolean): Frame[] {
  const framing = scenario.framing ?? {}
  const json: Json = framing.spaced === true ? spacedJson : JSON.stringify
  const chunks = buildChunks(plan, { toolCallQuirks: scenario.toolCallQuirks ?? true, toolCallsNameLate: scenario.toolCallsNameLate ?? false, framing })
  const faultAfter = scenario.midStreamAfter ?? 2
  const frames: Frame[] = []
  // Hostile events go in where a mid-stream fault would, and the stream carries on after them.
  let hostile = hostileFrames(plan, scenario, json)
  let counted = 0
  for (const chunk of chunks) {
    if (counted >= faultAfter) {
      if (scenario.midStream !== undefined) break
      frames.push(...hostile)
      hostile = []
    }
    frames.push({ data: json(chunk.data) })
    if (chunk.counts) counted++
  }
  if (scenario.midStream === 'inspection') return [...frames, { data: inspectionFrame(requestId) }]
  if (scenario.midStream === 'event_error') return [...frames, { event: 'error', data: eventErrorFrame() }]
  if (scenario.midStream === 'reset') return [...frames, { reset: true }]
  frames.push(...hostile)
  if (includeUsage) frames.push({ data: json(usageChunk(plan)) })
  if (framing.noDone !== true) frames.push({ data: '[DONE]' })
  if (framing.dataAfterDone === true) frames.push({ data: json(strayChunk(plan)) })
  return frames
}

function hostileFrames (plan: Plan, scenario: Scenario, json: Json): Frame[] {
  const frames: Frame[] = []
  const malformed = scenario.malformedFrame
  if (malformed !== undefined) {
    for (const chunk of paddingChunks(plan, malformed.paddingBytes ?? 0)) frames.push({ data: json(chunk), delayMs: HOSTILE_GAP_MS })
    frames.push({ data: malformedData(plan, malformed.kind, json), delayMs: malformed.paddingBytes ? HOSTILE_GAP_MS : undefined })
  }
  if (scenario.hugeFrame !== undefined) frames.push({ huge: scenario.hugeFrame })
  return frames
}

async function writeFrames (ex: Exchange, frames: Frame[], scenario: Scenario, plan: Plan): Promise<void> {
  const framing = scenario.framing ?? {}
  if (scenario.stall === 'after_first') {
    await ex.sleep(scenario.firstChunkDelayMs)
    await ex.write(format(frames[0], framing))
    return ex.stall()
  }
  let i = 0
  if (framing.batched === true) {
    // Every plain event in one write; a reset or a huge event that follows goes its own way.
    await ex.sleep(scenario.firstChunkDelayMs)
    i = frames.findIndex((frame) => !('data' in frame))
    if (i < 0) i = frames.length
    if (i > 0) await ex.write(frames.slice(0, i).map((frame) => format(frame, framing)).join(''))
  }
  for (; i < frames.length; i++) {
    const frame = frames[i]
    if ('delayMs' in frame && frame.delayMs !== undefined) await ex.sleep(frame.delayMs)
    else if (framing.batched !== true) await ex.sleep(i === 0 ? scenario.firstChunkDelayMs : scenario.intervalMs)
    // Reset: destroy the socket without the terminating zero-length chunk.
    if ('reset' in frame) return ex.destroy()
    // An event that never ends: the connection stays open until the client leaves.
    if ('huge' in frame) {
      if (!(await writeHugeFrame(ex, plan, frame.huge, framing.spaced === true ? spacedJson : JSON.stringify, framing.crlf === true ? '\r\n' : '\n'))) return ex.stall()
      continue
    }
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
  if (!('data' in frame)) return ''
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

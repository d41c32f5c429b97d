import { readFileSync } from 'node:fs'
import { REPO_ROOT } from './processes.ts'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileRow {
  name: string
  where: string
  ms: number
  /** Share of the busy time (all samples but idle), percent. */
  percent: number
}

export interface ProfileSummary {
  file: string
  /** Sampled wall time considered, ms, and the part of it the process was busy (not idle). */
  windowMs: number
  busyMs: number
  self: ProfileRow[]
  /** Self time by where the code lives: a package, Node's core, the gateway, GC, V8. */
  byArea: ProfileRow[]
  /** Inclusive time (self + callees) of the process's own functions (not its dependencies'). */
  ownInclusive: ProfileRow[]
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

function shortUrl (url: string): string {
  let path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url
  if (path.startsWith(REPO_ROOT)) path = path.slice(REPO_ROOT.length)
  return path
}

function area (frame: CallFrame): string {
  const { functionName, url } = frame
  if (SPECIAL.has(functionName)) return functionName
  if (url === '') return '(native / V8 builtins)'
  const path = shortUrl(url)
  if (path.startsWith('node:')) return 'node core (' + path.split('/').slice(0, 2).join('/').replace(/^node:internal\//, 'internal/') + ')'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  if (pkg) return 'npm: ' + pkg[1]
  if (OWN.test(path)) return 'own code: ' + path.split('/')[0] + '/'
  return path
}

// The process's own code: the gateway's src/, plugins/, routes/; the floor's bench/.
const OWN = /^(src|plugins|routes|bench)\//
const isOwn = (frame: CallFrame) => OWN.test(shortUrl(frame.url))

function label (frame: CallFrame): { name: string, where: string } {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
  if (frame.url === '') return { name, where: SPECIAL.has(name) ? '' : '(native)' }
  return { name, where: `${shortUrl(frame.url)}:${frame.lineNumber + 1}` }
}

function top (map: Map<string, { name: string, where: string, us: number }>, busyUs: number, n: number): ProfileRow[] {
  return [...map.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map(row => ({ name: row.name, where: row.where, ms: row.us / 1000, percent: busyUs > 0 ? (row.us / busyUs) * 100 : 0 }))
}

/**
 * Aggregates a V8 .cpuprofile: self time by function (name + file + line), by area, and inclusive time of the
 * process's own functions. `window` (µs, V8's monotonic clock, which is process.hrtime's) keeps only the samples
 * taken under load, leaving start-up and shutdown out.
 */
export function summariseProfile (file: string, window?: { fromUs: number, toUs: number }, n = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }
  let inWindow = (t: number) => window === undefined || (t >= window.fromUs && t <= window.toUs)
  // A window that misses the profile entirely (another clock) would leave nothing: then take it all.
  if (window !== undefined && (window.toUs < profile.startTime || window.fromUs > profile.endTime)) inWindow = () => true

  const self = new Map<string, { name: string, where: string, us: number }>()
  const areas = new Map<string, { name: string, where: string, us: number }>()
  const inclusive = new Map<string, { name: string, where: string, us: number }>()
  let windowUs = 0
  let busyUs = 0
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    if (!inWindow(t)) continue
    const us = profile.timeDeltas[i + 1] ?? 0
    const node = byId.get(profile.samples[i])
    if (node === undefined) continue
    windowUs += us
    if (node.callFrame.functionName === '(idle)') continue
    busyUs += us
    const { name, where } = label(node.callFrame)
    const key = `${name} ${where}`
    const row = self.get(key) ?? { name, where, us: 0 }
    row.us += us
    self.set(key, row)
    const a = area(node.callFrame)
    const arow = areas.get(a) ?? { name: a, where: '', us: 0 }
    arow.us += us
    areas.set(a, arow)
    // Inclusive: every distinct function of our own on this sample's stack.
    const seen = new Set<string>()
    let id: number | undefined = node.id
    for (let depth = 0; id !== undefined && depth < 500; depth++) {
      const frame: CallFrame = byId.get(id)!.callFrame
      if (isOwn(frame)) {
        const l = label(frame)
        const k = `${l.name} ${l.where}`
        if (!seen.has(k)) {
          seen.add(k)
          const irow = inclusive.get(k) ?? { name: l.name, where: l.where, us: 0 }
          irow.us += us
          inclusive.set(k, irow)
        }
      }
      id = parent.get(id)
    }
  }
  return {
    file,
    windowMs: windowUs / 1000,
    busyMs: busyUs / 1000,
    self: top(self, busyUs, n),
    byArea: top(areas, busyUs, 20),
    ownInclusive: top(inclusive, busyUs, 15)
  }
}

/** `requests`: responses completed in the window, for the µs per request column (NaN leaves it out). */
export function profileMarkdown (title: string, s: ProfileSummary, requests = NaN): string {
  const lines: string[] = []
  const perRequest = Number.isFinite(requests) && requests > 0
  const us = (row: ProfileRow) => (perRequest ? ` ${(row.ms * 1000 / requests).toFixed(1)} |` : '')
  const usHead = perRequest ? ' µs/req |' : ''
  const usRule = perRequest ? '---:|' : ''
  lines.push(`### ${title}`, '')
  lines.push(`Profile: \`${shortUrl(s.file)}\`; window under load ${(s.windowMs / 1000).toFixed(1)} s, of which busy (not idle) ${(s.busyMs / 1000).toFixed(1)} s${perRequest ? `, ${requests} requests completed (busy ${(s.busyMs * 1000 / requests).toFixed(0)} µs per request)` : ''}. Percentages are of the busy time.`, '')
  lines.push('Top self time by function:', '')
  lines.push(`| # | self ms |${usHead} % busy | function | where |`, `|---:|---:|${usRule}---:|---|---|`)
  s.self.forEach((row, i) => lines.push(`| ${i + 1} | ${row.ms.toFixed(0)} |${us(row)} ${row.percent.toFixed(1)} | \`${row.name}\` | ${row.where === '' || row.where === '(native)' ? row.where : `\`${row.where}\``} |`))
  lines.push('', 'Self time by area:', '')
  lines.push(`| self ms |${usHead} % busy | area |`, `|---:|${usRule}---:|---|`)
  for (const row of s.byArea) lines.push(`| ${row.ms.toFixed(0)} |${us(row)} ${row.percent.toFixed(1)} | ${row.name} |`)
  lines.push('', 'Own functions (gateway: src/, plugins/, routes/; floor: bench/), inclusive time (self + everything they call; Fastify runs the rest of a request synchronously from some callbacks, so a parser\'s inclusive time can include the handler):', '')
  lines.push(`| incl. ms |${usHead} % busy | function | where |`, `|---:|${usRule}---:|---|---|`)
  for (const row of s.ownInclusive) lines.push(`| ${row.ms.toFixed(0)} |${us(row)} ${row.percent.toFixed(1)} | \`${row.name}\` | \`${row.where}\` |`)
  lines.push('')
  return lines.join('\n')
}

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

// CPU pinning: the target under test (gateway or floor) gets a core of its own, the simulator and the load
// generator (this runner process) the others, so what is measured is the target and not the upstream or the
// client competing with it for the same core. With `taskset` (util-linux) when it is there; without it, or on a
// single core, nothing is pinned and the report says so.

export interface Pinning {
  enabled: boolean
  /** CPUs of the targets (gateway, floor), a taskset list such as "0"; empty when not pinned. */
  targetCpus: string
  /** CPUs of the simulator and of the runner (the load generator), such as "1"; empty when not pinned. */
  loadCpus: string
  /** One line for the report: which cores, or why nothing was pinned. */
  note: string
  /** CPUs this process could use before pinning itself (the machine's, as far as the benchmark is concerned). */
  available: number
}

/** Expands a CPU list as /proc prints it ("0-3,6") into numbers. */
export function parseCpuList (list: string): number[] {
  const cpus: number[] = []
  for (const part of list.trim().split(',')) {
    if (part === '') continue
    const [from, to] = part.split('-').map(Number)
    if (!Number.isInteger(from)) continue
    const last = Number.isInteger(to) ? to : from
    for (let cpu = from; cpu <= last && cpus.length < 4096; cpu++) cpus.push(cpu)
  }
  return cpus
}

/** The CPUs a process may run on (Cpus_allowed_list in /proc/PID/status); '' when unknown or gone. */
export function affinityOf (pid: number | 'self'): string {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? ''
  } catch {
    return ''
  }
}

function hasTaskset (): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore', timeout: 5000 })
    return true
  } catch {
    return false
  }
}

const allowedCpus = (): number[] => {
  const allowed = parseCpuList(affinityOf('self'))
  return allowed.length > 0 ? allowed : Array.from({ length: os.availableParallelism() }, (_, i) => i)
}

const off = (note: string, available: number): Pinning => ({ enabled: false, targetCpus: '', loadCpus: '', note, available })

/**
 * Decides the pinning and pins this process (the runner, which generates the load, and every child it starts
 * unless told otherwise) to the load CPUs. Targets are then started under `taskset -c <targetCpus>`.
 * The first allowed CPU goes to the target, every other one to the simulator and the load generator.
 */
export function applyPinning (wanted: boolean): Pinning {
  const cpus = allowedCpus()
  if (!wanted) return off('not pinned (--no-pin): the target, the simulator and the load generator share every CPU', cpus.length)
  if (cpus.length < 2) return off(`not pinned: only ${cpus.length} CPU available, so the target, the simulator and the load generator share it`, cpus.length)
  if (!hasTaskset()) return off('not pinned: `taskset` (util-linux) not found, so the target, the simulator and the load generator share every CPU', cpus.length)
  const targetCpus = String(cpus[0])
  const loadCpus = cpus.slice(1).join(',')
  try {
    // -a: every thread of the runner (libuv pool, V8 platform threads); threads made later inherit it.
    execFileSync('taskset', ['-a', '-p', '-c', loadCpus, String(process.pid)], { stdio: 'ignore', timeout: 5000 })
  } catch (error) {
    return off(`not pinned: taskset failed (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`, cpus.length)
  }
  const now = parseCpuList(affinityOf('self')).join(',')
  if (now !== loadCpus) return off(`not pinned: taskset left the runner on CPUs ${now || 'unknown'} instead of ${loadCpus}`, cpus.length)
  return {
    enabled: true,
    targetCpus,
    loadCpus,
    available: cpus.length,
    note: `pinned with taskset: target under test (gateway or floor) on CPU ${targetCpus}; upstream (lean upstream or simulator) and load generator (the runner) on CPU${cpus.length > 2 ? 's' : ''} ${loadCpus}`
  }
}

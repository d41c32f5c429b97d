import { readFileSync } from 'node:fs'
import os from 'node:os'
import { REPO_ROOT } from './processes.ts'

export interface Machine {
  date: string
  command: string
  cpus: number
  cpuModel: string
  memoryGb: number
  kernel: string
  node: string
  gatewayVersion: string
  loadAverageAtStart: number[]
  fileDescriptorLimit: string
  /** Which CPUs the target, the simulator and the load generator ran on, or why they were not pinned. */
  cpuPinning: string
}

function cpuModel (): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8')
    const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? 'unknown'
    const mhz = /^cpu MHz\s*:\s*([\d.]+)$/m.exec(info)?.[1]
    return mhz ? `${model} (${Math.round(Number(mhz))} MHz)` : model
  } catch {
    return os.cpus()[0]?.model ?? 'unknown'
  }
}

function fdLimit (): string {
  try {
    const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return match ? `${match[1]} (hard ${match[2]})` : 'unknown'
  } catch {
    return 'unknown'
  }
}

/** `cpus`: how many CPUs the benchmark may use (counted before the runner pins itself to some of them). */
export function machine (argv: string[], cpuPinning: string, cpus: number): Machine {
  let gatewayVersion = 'unknown'
  try {
    gatewayVersion = (JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {}
  return {
    date: new Date().toISOString(),
    command: ['node', 'bench/run.ts', ...argv].join(' '),
    cpus,
    cpuModel: cpuModel(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    gatewayVersion,
    loadAverageAtStart: os.loadavg().map(v => Math.round(v * 100) / 100),
    fileDescriptorLimit: fdLimit(),
    cpuPinning
  }
}

export function machineMarkdown (m: Machine): string {
  return [
    `- Command: \`${m.command}\``,
    `- Date: ${m.date}; gateway ${m.gatewayVersion}`,
    `- Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGb} GB RAM, ${m.kernel}; load average at start ${m.loadAverageAtStart.join(' / ')}`,
    `- Node.js ${m.node}; open files limit ${m.fileDescriptorLimit}`,
    `- CPUs: ${m.cpuPinning}`
  ].join('\n')
}

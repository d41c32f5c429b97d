import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { parse } from 'yaml'
import { ROOT } from './servers.ts'

// docker-compose.yml as `docker compose config` sees it. Where the compose plugin exists, it does the parsing
// and interpolation; elsewhere (no Docker on the CI machine) a YAML parse with merge keys and the same ${...}
// interpolation rules stands in. Either way the tests get one normalised model.

export interface Volume {
  type: 'bind' | 'volume' | 'tmpfs'
  /** Bind mounts: absolute path on the host. Volumes: the volume's name. */
  source?: string
  target: string
  readOnly: boolean
}

export interface Service {
  name: string
  image?: string
  build?: { context: string, dockerfile: string }
  ports: Array<{ target: number, published?: string, hostIp?: string }>
  volumes: Volume[]
  environment: Record<string, string>
  envFiles: Array<{ path: string, required: boolean }>
  dependsOn: Record<string, string>
  command: string[]
  healthcheck?: { test?: string[] | string, disable?: boolean }
  raw: any
}

export interface Compose {
  /** 'docker compose config' or 'yaml': who parsed the file. */
  parser: string
  services: Record<string, Service>
  volumes: string[]
  /** Variables the file interpolates (${NAME...}). */
  variables: string[]
}

/** Whether `docker compose` (the plugin) answers here. */
export function composeAvailable (): boolean {
  const result = spawnSync('docker', ['compose', 'version'], { timeout: 10_000, encoding: 'utf8' })
  return result.status === 0
}

/** Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}. */
export function interpolate (text: string, env: Record<string, string | undefined>, used: Set<string> = new Set()): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])((?:[^{}]|\{[^}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, name: string | undefined, colon: string, operator: string, argument: string, bare: string | undefined) => {
      if (match === '$$') return '$'
      const variable = (name ?? bare)!
      used.add(variable)
      const value = env[variable]
      const unset = colon === ':' ? value === undefined || value === '' : value === undefined
      if (operator === '-') return unset ? interpolate(argument, env, used) : value!
      if (operator === '?') {
        if (unset) throw new Error(`required variable ${variable} is missing a value: ${argument}`)
        return value!
      }
      if (operator === '+') return unset ? '' : interpolate(argument, env, used)
      return value ?? ''
    })
}

function interpolateAll (value: unknown, env: Record<string, string | undefined>, used: Set<string>): unknown {
  if (typeof value === 'string') return interpolate(value, env, used)
  if (Array.isArray(value)) return value.map(item => interpolateAll(item, env, used))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolateAll(item, env, used)]))
  }
  return value
}

const hostPath = (path: string) => isAbsolute(path) ? path : resolve(ROOT, path)

function normaliseVolume (volume: any): Volume {
  if (typeof volume === 'string') {
    const [source, target, mode] = volume.split(':')
    if (target === undefined) return { type: 'volume', target: source, readOnly: false }
    const bind = /^[./~]/.test(source)
    return { type: bind ? 'bind' : 'volume', source: bind ? hostPath(source) : source, target, readOnly: (mode ?? '').split(',').includes('ro') }
  }
  return {
    type: volume.type,
    source: volume.type === 'bind' ? hostPath(volume.source) : volume.source,
    target: volume.target,
    readOnly: volume.read_only === true
  }
}

function normalisePort (port: any): Service['ports'][number] {
  if (typeof port === 'object') return { target: Number(port.target), published: port.published === undefined ? undefined : String(port.published), hostIp: port.host_ip }
  const parts = String(port).split(':')
  const target = Number(parts.at(-1)!.split('/')[0])
  if (parts.length === 1) return { target }
  if (parts.length === 2) return { target, published: parts[0] }
  return { target, published: parts[1], hostIp: parts[0] }
}

function normaliseService (name: string, raw: any): Service {
  const environment: Record<string, string> = {}
  if (Array.isArray(raw.environment)) {
    for (const entry of raw.environment) {
      const [key, ...rest] = String(entry).split('=')
      environment[key] = rest.join('=')
    }
  } else {
    for (const [key, value] of Object.entries(raw.environment ?? {})) environment[key] = value === null ? '' : String(value)
  }
  const envFiles = ([] as any[]).concat(raw.env_file ?? []).map(entry => typeof entry === 'string'
    ? { path: hostPath(entry), required: true }
    : { path: hostPath(entry.path), required: entry.required !== false })
  const dependsOn: Record<string, string> = Array.isArray(raw.depends_on)
    ? Object.fromEntries(raw.depends_on.map((service: string) => [service, 'service_started']))
    : Object.fromEntries(Object.entries(raw.depends_on ?? {}).map(([service, spec]: [string, any]) => [service, spec?.condition ?? 'service_started']))
  const build = raw.build === undefined
    ? undefined
    : typeof raw.build === 'string'
      ? { context: hostPath(raw.build), dockerfile: 'Dockerfile' }
      : { context: hostPath(raw.build.context ?? '.'), dockerfile: raw.build.dockerfile ?? 'Dockerfile' }
  return {
    name,
    image: raw.image,
    build,
    ports: (raw.ports ?? []).map(normalisePort),
    volumes: (raw.volumes ?? []).map(normaliseVolume),
    environment,
    envFiles,
    dependsOn,
    command: raw.command === undefined ? [] : Array.isArray(raw.command) ? raw.command.map(String) : String(raw.command).split(/\s+/),
    healthcheck: raw.healthcheck,
    raw
  }
}

/** docker-compose.yml, parsed and interpolated with env (as if it were the .env file), normalised. */
export function loadCompose (env: Record<string, string | undefined>, options: { useDocker?: boolean } = {}): Compose {
  const file = join(ROOT, 'docker-compose.yml')
  const text = readFileSync(file, 'utf8')
  const used = new Set<string>()
  interpolate(text.replace(/^\s*#.*$/gm, ''), new Proxy({}, { get: () => 'x' }), used)
  let model: any
  let parser: string
  if (options.useDocker ?? composeAvailable()) {
    const result = spawnSync('docker', ['compose', '-f', file, '--project-directory', ROOT, 'config', '--format', 'json'], {
      cwd: ROOT,
      timeout: 30_000,
      encoding: 'utf8',
      env: { ...process.env, ...env } as NodeJS.ProcessEnv
    })
    if (result.status !== 0) throw new Error(`docker compose config failed: ${result.stderr}`)
    model = JSON.parse(result.stdout)
    parser = 'docker compose config'
  } else {
    model = interpolateAll(parse(text, { merge: true }), env, new Set())
    parser = 'yaml'
  }
  return {
    parser,
    services: Object.fromEntries(Object.entries(model.services ?? {}).map(([name, raw]) => [name, normaliseService(name, raw)])),
    volumes: Object.keys(model.volumes ?? {}),
    variables: [...used].sort()
  }
}

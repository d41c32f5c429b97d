import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { builtinModules } from 'node:module'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { parse } from 'yaml'
import { loadConfig } from '../../src/config.ts'
import { postJson, startStack, user } from '../helper.ts'
import { composeAvailable, interpolate, loadCompose, type Compose, type Service } from './compose.ts'
import { DEPLOY, ROOT, freePort } from './servers.ts'

// docker-compose.yml, the Dockerfile, .dockerignore and .env.example, checked without a Docker engine: the
// compose model (docker compose config where the plugin exists, a YAML parse otherwise) against the files in
// deploy/, and the image's contents against what `node src/server.ts` imports.

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8')

/** KEY=value lines of an env file, in order. */
function envFile (text: string): Array<[string, string]> {
  return text.split('\n')
    .map(line => line.trim())
    .filter(line => line !== '' && !line.startsWith('#'))
    .map(line => {
      const at = line.indexOf('=')
      return [line.slice(0, at), line.slice(at + 1)] as [string, string]
    })
}

const exampleEnv = envFile(read('.env.example'))
const exampleValues = Object.fromEntries(exampleEnv)
// The example as a user fills it in: what docker compose would read from .env.
const filledIn = { ...exampleValues, DASHSCOPE_API_KEY: 'sk-test', GATEWAY_API_KEYS: 'client-key-1,client-key-2', GRAFANA_ADMIN_PASSWORD: 'a-long-password' }

const replicasOf = (compose: Compose) => Object.values(compose.services).filter(service => /^gateway-\d+$/.test(service.name))
const mountAt = (service: Service, target: string) => service.volumes.find(volume => volume.target === target)

const withoutComments = (text: string) => text.replace(/^\s*#.*$/gm, '')

/** The host:port an nginx variable is set to (`set $replicas gateway-replicas:3000;`). */
function nginxVariable (nginx: string, name: string): string | undefined {
  return withoutComments(nginx).match(new RegExp(`^\\s*set\\s+\\$${name}\\s+([^\\s;]+);`, 'm'))?.[1]
}

/** What each location proxies to: the location's argument and its proxy_pass target. */
function proxyPasses (nginx: string): Array<{ location: string, target: string }> {
  const passes: Array<{ location: string, target: string }> = []
  for (const match of withoutComments(nginx).matchAll(/location\s+([^{]+?)\s*\{([^}]*)\}/g)) {
    const target = match[2].match(/proxy_pass\s+([^;]+);/)?.[1]
    if (target) passes.push({ location: match[1], target })
  }
  return passes
}

/** The node -e command of a healthcheck or HEALTHCHECK instruction, run here against a live server. */
async function runHealthcheck (test: string[], env: Record<string, string>): Promise<number | null> {
  const [kind, command, flag, script] = test
  if (kind !== 'CMD' || command !== 'node' || flag !== '-e') throw new Error(`not a node -e healthcheck: ${JSON.stringify(test)}`)
  const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 10_000 })
  const [code] = await once(child, 'exit')
  return code as number | null
}

t.test('docker-compose.yml parses and wires the deployment together', async t => {
  const compose = loadCompose(filledIn)
  t.comment(`parsed by ${compose.parser}${compose.parser === 'yaml' ? ' (no docker compose plugin here)' : ''}`)
  const names = Object.keys(compose.services).sort()
  t.same(names, ['gateway-1', 'gateway-2', 'grafana', 'nginx', 'prometheus', 'redis'], 'the services')

  const replicas = replicasOf(compose)
  t.equal(replicas.length, 2, 'two gateway replicas')
  for (const replica of replicas) {
    t.equal(replica.build?.context, ROOT, `${replica.name} is built from the repository`)
    t.ok(existsSync(join(replica.build?.context ?? ROOT, replica.build?.dockerfile ?? 'Dockerfile')), `${replica.name}: its Dockerfile exists`)
    t.equal(replica.environment.PORT, '3000', `${replica.name} listens on 3000`)
    t.equal(replica.environment.TRUST_PROXY, 'true', `${replica.name} trusts nginx's X-Forwarded-For`)
    t.equal(replica.environment.REDIS_URL, 'redis://redis:6379', `${replica.name} shares state through the redis service`)
    t.equal(replica.dependsOn.redis, 'service_healthy', `${replica.name} waits for Redis`)
    t.ok(replica.envFiles.some(file => file.path === join(ROOT, '.env') && !file.required), `${replica.name} reads .env when present`)
    t.equal(replica.environment.GATEWAY_API_KEYS, filledIn.GATEWAY_API_KEYS, `${replica.name} gets the client keys from GATEWAY_API_KEYS`)
    const config = loadConfig({ ...filledIn, ...replica.environment })
    t.equal(config.PORT, 3000, `${replica.name}'s environment is a valid gateway configuration`)
    t.equal(config.HOST, '0.0.0.0', `${replica.name} listens on every interface of its container`)
    t.equal(config.topology.clients.length, 2, `${replica.name} requires client keys`)
    const healthcheck = ([] as string[]).concat(replica.healthcheck?.test ?? [])
    t.match(healthcheck.join(' '), /\/health\/ready\b/, `${replica.name} is healthy when /health/ready says so`)
  }
  t.same(replicas[0].raw.image, replicas[1].raw.image, 'both replicas run the same image')

  const published = Object.values(compose.services).filter(service => service.ports.some(port => port.published !== undefined))
  t.same(published.map(service => service.name), ['nginx'], 'nginx is the only service with published ports')
  t.same(compose.services.nginx.ports.map(port => [port.published, port.target]), [['8080', 80]], 'nginx: NGINX_PORT (8080) to 80')

  const missing: string[] = []
  for (const service of Object.values(compose.services)) {
    for (const volume of service.volumes) {
      if (volume.type === 'bind' && !existsSync(volume.source!)) missing.push(`${service.name}: ${volume.source}`)
      if (volume.type === 'volume' && !compose.volumes.includes(volume.source!)) missing.push(`${service.name}: volume ${volume.source} is not declared`)
      if (volume.type === 'bind') t.ok(volume.readOnly, `${service.name}: ${relative(ROOT, volume.source!)} is mounted read-only`)
    }
    for (const file of service.envFiles) if (file.required && !existsSync(file.path)) missing.push(`${service.name}: env_file ${file.path}`)
    for (const dependency of Object.keys(service.dependsOn)) if (!compose.services[dependency]) missing.push(`${service.name}: depends on unknown ${dependency}`)
  }
  t.same(missing, [], 'every file, volume and service the compose file refers to exists')

  // nginx in front of every replica.
  const nginx = compose.services.nginx
  const nginxConf = mountAt(nginx, '/etc/nginx/nginx.conf')
  t.equal(nginxConf?.source, join(DEPLOY, 'nginx.conf'), 'nginx runs deploy/nginx.conf')
  const conf = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8')
  const replicaAddresses = replicas.map(replica => `${replica.name}:${replica.environment.PORT}`).sort()
  // nginx resolves one name, which every replica carries as a network alias, at request time (no upstream block:
  // its servers would be resolved once, at start).
  t.notMatch(withoutComments(conf), /^\s*upstream\s/m, 'no upstream block: nothing is resolved only at start')
  t.match(withoutComments(conf), /^\s*resolver\s+127\.0\.0\.11\s+valid=\d+s\b/m, 'nginx asks Docker\'s embedded DNS, and again after a few seconds')
  const [alias, aliasPort] = (nginxVariable(conf, 'replicas') ?? '').split(':')
  for (const replica of replicas) {
    const aliases = replica.raw.networks?.default?.aliases ?? []
    t.ok(aliases.includes(alias), `${replica.name} carries the network alias ${alias} that nginx resolves`)
    t.equal(aliasPort, replica.environment.PORT, `nginx reaches ${replica.name} on its port`)
  }
  const others = Object.values(compose.services).filter(service => !replicas.includes(service))
  t.same(others.filter(service => (service.raw.networks?.default?.aliases ?? []).includes(alias)).map(service => service.name), [], 'no other service carries the alias')
  const passes = proxyPasses(conf)
  t.same(passes.filter(pass => !pass.location.startsWith('/grafana/')).map(pass => pass.target), ['http://$replicas', 'http://$replicas', 'http://$replicas'],
    'the API, /health and /metrics go to the replicas through the variable')
  t.match(conf, new RegExp(`listen\\s+${nginx.ports[0].target};`), 'nginx listens on the published target port')
  for (const replica of replicas) t.equal(nginx.dependsOn[replica.name], 'service_healthy', `nginx waits for ${replica.name} to be healthy`)
  const nginxCheck = ([] as string[]).concat(nginx.healthcheck?.test ?? [])
  t.match(nginxCheck.join(' '), /http:\/\/127\.0\.0\.1\/health\b/, 'nginx\'s healthcheck asks /health through itself')

  // Prometheus scrapes every replica directly.
  const prometheus = compose.services.prometheus
  const configFlag = prometheus.command.find(arg => arg.startsWith('--config.file='))?.split('=')[1] ?? '/etc/prometheus/prometheus.yml'
  const configMount = prometheus.volumes.find(volume => volume.type === 'bind' && (configFlag === volume.target || configFlag.startsWith(volume.target + '/')))
  t.ok(configMount, `the Prometheus config ${configFlag} comes from a bind mount`)
  const configFile = configMount!.target === configFlag ? configMount!.source! : join(configMount!.source!, relative(configMount!.target, configFlag))
  t.equal(configFile, join(DEPLOY, 'prometheus', 'prometheus.yml'), 'it is deploy/prometheus/prometheus.yml')
  const promConfig = parse(readFileSync(configFile, 'utf8'))
  const targets = promConfig.scrape_configs.flatMap((job: any) => job.static_configs.flatMap((group: any) => group.targets)).sort()
  t.same(targets, replicaAddresses, 'Prometheus targets are the replicas, by service name and port')
  for (const rules of promConfig.rule_files) t.ok(existsSync(join(dirname(configFile), rules)), `rule file ${rules} is in the mounted folder`)
  t.ok(mountAt(prometheus, '/prometheus'), 'Prometheus keeps its data in a volume')

  // Grafana: provisioned data source and dashboard.
  const grafana = compose.services.grafana
  const provisioning = mountAt(grafana, '/etc/grafana/provisioning')
  t.equal(provisioning?.source, join(DEPLOY, 'grafana', 'provisioning'), 'Grafana\'s provisioning is mounted')
  const datasources = parse(readFileSync(join(provisioning!.source!, 'datasources', 'prometheus.yml'), 'utf8')).datasources
  const promUrl = new URL(datasources[0].url)
  t.ok(compose.services[promUrl.hostname], `the data source points at the ${promUrl.hostname} service`)
  t.equal(promUrl.port, '9090', 'on Prometheus\' port')
  const provider = parse(readFileSync(join(provisioning!.source!, 'dashboards', 'qwen-gateway.yml'), 'utf8')).providers[0]
  const dashboards = mountAt(grafana, provider.options.path)
  t.ok(dashboards, `the dashboard provider's folder ${provider.options.path} is mounted`)
  t.ok(existsSync(join(dashboards!.source!, 'qwen-gateway.json')), 'with the dashboard in it')
  const home = grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH
  t.ok(home.startsWith(provider.options.path + '/') && existsSync(join(dashboards!.source!, home.slice(provider.options.path.length + 1))), 'the home dashboard is the provisioned one')
  t.equal(grafana.environment.GF_SERVER_SERVE_FROM_SUB_PATH, 'true')
  t.match(grafana.environment.GF_SERVER_ROOT_URL, /\/grafana\/$/, 'Grafana lives under /grafana/, where nginx serves it')
  t.match(conf, /location \/grafana\/ \{/)
  t.equal(nginxVariable(conf, 'grafana'), 'grafana:3000', 'nginx reaches Grafana by its service name on its default port')
  t.same(passes.filter(pass => pass.location.startsWith('/grafana/')).map(pass => pass.target), ['http://$grafana', 'http://$grafana'])
  t.equal(grafana.environment.GF_SECURITY_ADMIN_PASSWORD, 'a-long-password', 'the admin password comes from GRAFANA_ADMIN_PASSWORD')

  // Redis.
  t.ok(compose.services.redis.healthcheck?.test, 'Redis has a healthcheck')
  for (const [name, service] of Object.entries(compose.services) as Array<[string, any]>) {
    t.ok(service.healthcheck?.test, `${name} has a healthcheck`)
    if (service.image && !String(service.image).endsWith(':local')) t.match(service.image, /:v?\d+\.\d+\.\d+(-[a-z]+)?$/, `${name}'s image is pinned to one release (${service.image})`)
  }
  t.same(compose.services.redis.ports, [], 'Redis is not published')
})

t.test('docker compose refuses to start without client keys or a Grafana admin password, and every variable it uses is in .env.example', async t => {
  const compose = loadCompose(filledIn, { useDocker: false })
  t.same(compose.variables.filter(name => !(name in exampleValues)), [], `the compose variables (${compose.variables.join(', ')}) are documented`)
  const withKeys = { ...exampleValues, GATEWAY_API_KEYS: 'client-key-1' }
  const withPassword = { ...exampleValues, GRAFANA_ADMIN_PASSWORD: 'a-long-password' }
  t.throws(() => loadCompose(withKeys, { useDocker: false }), /required variable GRAFANA_ADMIN_PASSWORD is missing a value: set GRAFANA_ADMIN_PASSWORD in \.env/)
  t.throws(() => loadCompose(withPassword, { useDocker: false }), /required variable GATEWAY_API_KEYS is missing a value: set GATEWAY_API_KEYS in \.env/)
  t.throws(() => loadCompose({ ...withPassword, GATEWAY_API_KEYS: '' }, { useDocker: false }), /GATEWAY_API_KEYS/, 'an empty value counts as missing')
  t.throws(() => loadCompose({ ...withPassword, GATEWAY_API_KEYS: undefined }, { useDocker: false }), /GATEWAY_API_KEYS/, 'and so does an unset one')
  if (composeAvailable()) {
    t.throws(() => loadCompose({ ...withKeys, GRAFANA_ADMIN_PASSWORD: '' }, { useDocker: true }), /GRAFANA_ADMIN_PASSWORD/)
    t.throws(() => loadCompose({ ...withPassword, GATEWAY_API_KEYS: '' }, { useDocker: true }), /GATEWAY_API_KEYS/)
  }
  // Had compose let the replicas start without keys, the gateway would have refused to, with one line saying why.
  const replica = loadCompose(filledIn, { useDocker: false }).services['gateway-1']
  t.throws(() => loadConfig({ ...withPassword, ...replica.environment, GATEWAY_API_KEYS: '' }),
    { message: 'Invalid configuration: HOST="0.0.0.0" would open the gateway to the network without client keys; set GATEWAY_API_KEYS, or GATEWAY_ALLOW_OPEN=true to run an open gateway on purpose' })
  const dollar = '$'
  t.equal(interpolate(`${dollar}{REDIS_URL:-redis://redis:6379}`, { REDIS_URL: '' }), 'redis://redis:6379', 'an empty REDIS_URL in .env means the compose Redis')
  t.equal(interpolate(`${dollar}{NGINX_PORT:-8080}:80`, { NGINX_PORT: '9000' }), '9000:80')
})

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile and .dockerignore

interface Stage {
  from: string
  lines: string[]
}

function dockerfileStages (text: string): { args: Record<string, string>, stages: Stage[] } {
  const logical = text.replace(/\\\n/g, ' ').split('\n').map(line => line.trim()).filter(line => line && !line.startsWith('#'))
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const line of logical) {
    const [instruction, ...rest] = line.split(/\s+/)
    const argument = rest.join(' ')
    if (instruction === 'ARG' && stages.length === 0) {
      const [name, value] = argument.split('=')
      args[name] = value ?? ''
    } else if (instruction === 'FROM') {
      stages.push({ from: argument.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? ''), lines: [] })
    } else if (stages.length > 0) {
      stages.at(-1)!.lines.push(line)
    }
  }
  return { args, stages }
}

/** COPY sources (not --from) of a stage. */
const copySources = (stage: Stage) => stage.lines
  .filter(line => /^COPY\s/.test(line) && !/--from=/.test(line))
  .flatMap(line => {
    const parts = line.replace(/^COPY\s+/, '').split(/\s+/).filter(part => !part.startsWith('--'))
    return parts.slice(0, -1)
  })

/** Docker's .dockerignore matching, enough for this file: *, **, ?, !exceptions, last match wins. */
function dockerignored (patterns: string[], path: string): boolean {
  const toRegExp = (pattern: string) => new RegExp('^' + pattern.replace(/^\/+|\/+$/g, '')
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .split('**')
    .map(part => part.replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
    .join('.*') + '(/.*)?$')
  let ignored = false
  for (const raw of patterns) {
    const exception = raw.startsWith('!')
    if (toRegExp(exception ? raw.slice(1) : raw).test(path)) ignored = !exception
  }
  return ignored
}

t.test('the Dockerfile builds a small, non-root production image that runs the compiled gateway', async t => {
  const { stages } = dockerfileStages(read('Dockerfile'))
  t.ok(stages.length >= 2, 'multi-stage')
  const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(read('Dockerfile'))?.[1] ?? ''
  t.match(image, /^node:24\.\d+\.\d+-bookworm-slim$/, `the Node image is one pinned release of Node 24 (${image})`)
  const fromImage = (from: string) => { const name = from.split(/\s+/)[0]; return name === image || /^\$\{NODE_IMAGE\}$/.test(name) }
  t.ok(stages.every(stage => fromImage(stage.from)), `every stage is that image (${stages.map(stage => stage.from).join(', ')})`)
  const [deps, final] = [stages[0], stages.at(-1)!]
  t.ok(deps.lines.some(line => /npm ci\b.*--omit=dev/.test(line)), 'production dependencies only, from the lockfile (npm ci --omit=dev)')
  t.ok(final.lines.some(line => /^COPY --from=\S+ \/app\/node_modules/.test(line)), 'the final stage takes node_modules from the deps stage')
  t.notOk(final.lines.some(line => /^RUN\s+npm/.test(line)), 'no npm in the final stage')
  const user = final.lines.filter(line => line.startsWith('USER ')).at(-1)?.split(/\s+/)[1]
  t.ok(user && user !== 'root' && user !== '0', `runs as ${user}, not root`)
  const healthcheck = final.lines.find(line => line.startsWith('HEALTHCHECK '))
  t.match(healthcheck, /\/health\/ready\b/, 'HEALTHCHECK on /health/ready')
  t.match(healthcheck, /--timeout=\d+s/, 'with a timeout')
  const cmd = final.lines.find(line => line.startsWith('CMD '))
  const start = JSON.parse(read('package.json')).scripts.start.split(/\s+/)
  t.same(JSON.parse(cmd!.slice(4)), start, `CMD ${JSON.stringify(start)}, exec form (signals reach Node), as npm start runs it`)
  t.equal(start.at(-1), 'dist/src/server.js', 'the compiled gateway')
  const build = stages.find(stage => stage.lines.some(line => /^RUN npm run build$/.test(line)))
  t.ok(build, 'a stage compiles the gateway with npm run build')
  t.ok(final.lines.some(line => /^COPY --from=\S+ \/app\/dist \.\/dist$/.test(line)), 'the final stage takes dist/ from it')
  t.notOk(final.lines.some(line => /^COPY (src|plugins|routes)\b/.test(line)), 'and no TypeScript sources')
  t.match(final.lines.find(line => line.startsWith('EXPOSE ')), /\b3000\b/)

  const ignore = read('.dockerignore').split('\n').map(line => line.trim()).filter(line => line && !line.startsWith('#'))
  const sources = stages.flatMap(copySources)
  t.same(sources.filter(source => !existsSync(join(ROOT, source))), [], `every COPY source exists (${sources.join(', ')})`)
  t.same(sources.filter(source => dockerignored(ignore, source)), [], '.dockerignore keeps every COPY source in the build context')
  for (const secret of ['.env', '.env.local', 'node_modules', 'dist', '.git', 'test', '.tap', 'coverage']) {
    t.ok(dockerignored(ignore, secret), `.dockerignore keeps ${secret} out of the build context`)
  }
})

/** The Dockerfile's HEALTHCHECK command, as compose's exec form: ["CMD", "node", "-e", "..."]. */
function dockerfileHealthcheck (): string[] {
  const final = dockerfileStages(read('Dockerfile')).stages.at(-1)!
  const line = final.lines.find(line => line.startsWith('HEALTHCHECK '))!
  return ['CMD', ...JSON.parse(line.slice(line.indexOf(' CMD ') + 5))]
}

t.test('the healthchecks pass on a ready gateway, and fail on one that is not ready or not there', async t => {
  const checks = { Dockerfile: dockerfileHealthcheck(), 'docker-compose.yml': ([] as string[]).concat(loadCompose(filledIn, { useDocker: false }).services['gateway-1'].healthcheck?.test ?? []) }
  const portOf = (origin: string) => new URL(origin).port
  const ready = portOf((await startStack(t)).origin)
  // The upstream refuses this gateway's only key: after the first refusal it has no usable key, and is not ready.
  const refused = await startStack(t, { sim: { apiKeys: ['sk-right'] }, env: { DASHSCOPE_API_KEY: 'sk-wrong' } })
  const answer = await postJson(`${refused.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hi') })
  t.equal(answer.status, 401, 'the upstream refused the key')
  await answer.text()
  const notReady = portOf(refused.origin)
  const readiness = await fetch(`${refused.origin}/health/ready`)
  t.equal(readiness.status, 503, 'that gateway answers /health/ready with 503')
  await readiness.text()
  const nothing = String(await freePort())
  for (const [where, test] of Object.entries(checks)) {
    t.equal(await runHealthcheck(test, { PORT: ready }), 0, `${where}: healthy when /health/ready answers 200`)
    t.equal(await runHealthcheck(test, { PORT: notReady }), 1, `${where}: unhealthy when it answers 503`)
    t.equal(await runHealthcheck(test, { PORT: nothing }), 1, `${where}: unhealthy when nothing listens`)
  }
})

/** Relative and bare imports of a TypeScript file, type-only imports left out (erased at run time). */
function runtimeImports (file: string): string[] {
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  const specifiers: string[] = []
  for (const match of text.matchAll(/^\s*(import|export)\s+(type\s+)?([^'"]*?\bfrom\s+)?['"]([^'"]+)['"]/gm)) {
    if (!match[2]) specifiers.push(match[4])
  }
  for (const match of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) specifiers.push(match[1])
  return specifiers
}

function tsFiles (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? tsFiles(path) : path.endsWith('.ts') ? [path] : []
  })
}

t.test('the image compiles everything src/server.ts loads, and npm ci --omit=dev installs every package it imports', async t => {
  const { stages } = dockerfileStages(read('Dockerfile'))
  // The build stage compiles what it copies into the dist/ that the final stage runs.
  const build = stages.find(stage => stage.lines.some(line => /^RUN npm run build$/.test(line)))!
  const copied = copySources(build).map(source => resolve(ROOT, source))
  const inImage = (file: string) => copied.some(source => file === source || file.startsWith(source + sep))
  const pkg = JSON.parse(read('package.json'))
  const production = new Set(Object.keys(pkg.dependencies ?? {}))
  const builtins = new Set(builtinModules)

  // src/server.ts and everything @fastify/autoload loads from plugins/ and routes/.
  const queue = [join(ROOT, 'src', 'server.ts'), ...tsFiles(join(ROOT, 'plugins')), ...tsFiles(join(ROOT, 'routes'))]
  const seen = new Set<string>()
  const outside: string[] = []
  const devOnly: string[] = []
  const unresolved: string[] = []
  while (queue.length > 0) {
    const file = queue.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    if (!inImage(file)) outside.push(relative(ROOT, file))
    if (!existsSync(file)) {
      unresolved.push(relative(ROOT, file))
      continue
    }
    if (!file.endsWith('.ts')) continue
    for (const specifier of runtimeImports(file)) {
      if (specifier.startsWith('.')) {
        queue.push(resolve(dirname(file), specifier))
      } else if (!specifier.startsWith('node:') && !builtins.has(specifier)) {
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]
        if (!production.has(name)) devOnly.push(`${relative(ROOT, file)}: ${name}`)
      }
    }
  }
  t.ok(seen.size > 20, `${seen.size} files loaded at run time`)
  t.same(unresolved, [], 'every relative import resolves to a file')
  t.same(outside, [], 'none of them is missing from the image')
  t.same(devOnly, [], 'every package they import is a production dependency')
})

// ---------------------------------------------------------------------------------------------------------------
// .env.example

/** The variables src/config.ts reads: the keys of its ConfigSchema object. */
function configVariables (): string[] {
  const source = readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8')
  const start = source.indexOf('const ConfigSchema = Type.Object({')
  const body = source.slice(start, source.indexOf('\n})', start))
  return [...body.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map(match => match[1])
}

t.test('.env.example lists every variable, and is a valid configuration as it stands', async t => {
  const names = exampleEnv.map(([name]) => name)
  t.same(names.filter((name, i) => names.indexOf(name) !== i), [], 'no variable twice')
  const gateway = configVariables()
  t.ok(gateway.length >= 15, `${gateway.length} variables in src/config.ts`)
  t.same(gateway.filter(name => !names.includes(name)), [], 'every variable the gateway reads is listed')
  const readme = [...read('README.md').matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map(match => match[1])
  t.same(readme.filter(name => !names.includes(name)), [], 'every variable of README\'s configuration table is listed')
  for (const name of ['REDIS_URL', 'GRAFANA_ADMIN_PASSWORD', 'NGINX_PORT']) t.ok(names.includes(name), `${name} is listed`)
  for (const secret of ['DASHSCOPE_API_KEY', 'GATEWAY_API_KEYS', 'GRAFANA_ADMIN_PASSWORD']) t.equal(exampleValues[secret], '', `${secret} is empty in the example`)
  t.doesNotThrow(() => loadConfig(exampleValues), 'the gateway accepts the example as it is')

  const bodyLimit = Number(exampleValues.BODY_LIMIT)
  const nginxLimit = readFileSync(join(DEPLOY, 'nginx.conf'), 'utf8').match(/client_max_body_size\s+(\d+)([km]?);/i)
  const factor = { '': 1, k: 1024, m: 1024 * 1024 }[(nginxLimit?.[2] ?? '').toLowerCase() as '' | 'k' | 'm']
  t.equal(Number(nginxLimit?.[1]) * factor, bodyLimit, 'nginx\'s client_max_body_size equals BODY_LIMIT')
  t.equal(loadConfig({}).BODY_LIMIT, bodyLimit, 'and BODY_LIMIT\'s default')
})

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { KUBERNETES } from './kubernetes-render.ts'
import { describe, type Manifest } from './kubernetes-schemas.ts'

// Reading rendered objects the way the cluster wires them: by kind and name, selectors against labels, a container's
// environment with its Secret references and its ConfigMap files.

export const SECRET_EXAMPLE = join(KUBERNETES, 'secret.example.yaml')
export const secretExample = () => parse(readFileSync(SECRET_EXAMPLE, 'utf8')) as Manifest

export function find (objects: Manifest[], kind: string, name: string): Manifest {
  const found = objects.find(object => object.kind === kind && object.metadata.name === name)
  if (found === undefined) throw new Error(`no ${kind} ${name} among ${objects.map(describe).join(', ')}`)
  return found
}

export const ofKind = (objects: Manifest[], kind: string) => objects.filter(object => object.kind === kind)

/** Whether every key=value of a selector is among the labels (an empty selector selects nothing here, on purpose). */
export const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> = {}) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value)

/** A container port by number or by name. */
export const containerPort = (container: any, port: number | string): number | undefined =>
  typeof port === 'number' ? port : container.ports?.find((entry: any) => entry.name === port)?.containerPort

/** Every container of a pod spec, init containers included. */
export const containersOf = (pod: any): any[] => [...(pod.initContainers ?? []), ...pod.containers]

/** A Deployment's gateway container. */
export const gatewayContainer = (deployment: Manifest) =>
  deployment.spec.template.spec.containers.find((container: any) => container.name === 'gateway')

/**
 * The container's environment as the kubelet would set it: plain values, Secret references answered from
 * secret.example.yaml (placeholders), and ConfigMap references from the rendered ConfigMaps.
 */
export function containerEnv (objects: Manifest[], container: any): Record<string, string> {
  const secret = secretExample()
  const env: Record<string, string> = {}
  for (const entry of container.env ?? []) {
    const secretRef = entry.valueFrom?.secretKeyRef
    const configRef = entry.valueFrom?.configMapKeyRef
    if (secretRef) {
      if (secretRef.name !== secret.metadata.name) throw new Error(`${entry.name}: Secret ${secretRef.name} is not the one secret.example.yaml shows`)
      env[entry.name] = String(secret.stringData[secretRef.key])
    } else if (configRef) {
      env[entry.name] = String(find(objects, 'ConfigMap', configRef.name).data[configRef.key])
    } else {
      env[entry.name] = String(entry.value)
    }
  }
  return env
}

/**
 * Writes the ConfigMaps mounted into the container under `dir` (each mount at dir + its mountPath) and returns the
 * environment with paths under those mounts pointed at the copies: what the process would read in the pod.
 */
export function materializeMounts (objects: Manifest[], pod: any, container: any, env: Record<string, string>, dir: string): Record<string, string> {
  const moved = { ...env }
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes.find((entry: any) => entry.name === mount.name)
    if (!volume?.configMap) continue
    const target = join(dir, mount.mountPath)
    mkdirSync(target, { recursive: true })
    for (const [key, text] of Object.entries(find(objects, 'ConfigMap', volume.configMap.name).data as Record<string, string>)) {
      writeFileSync(join(target, key), text)
    }
    for (const [name, value] of Object.entries(moved)) {
      if (value.startsWith(`${mount.mountPath}/`)) moved[name] = join(target, value.slice(mount.mountPath.length + 1))
    }
  }
  return moved
}

/** The seconds a preStop hook waits: a sleep action, or an exec of `sleep N`. */
export function preStopSeconds (container: any): number {
  const preStop = container.lifecycle?.preStop
  if (preStop?.sleep) return Number(preStop.sleep.seconds)
  const command: string[] | undefined = preStop?.exec?.command
  if (command?.length === 2 && command[0] === 'sleep') return Number(command[1])
  return 0
}

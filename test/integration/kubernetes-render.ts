import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import type { Manifest } from './kubernetes-schemas.ts'
import { DEPLOY, inCI, type BinaryTest } from './servers.ts'

// deploy/kubernetes as a cluster would receive it: `kubectl kustomize` renders each overlay, and the tests read what
// it printed. kubectl is the machine's own (/usr/bin/kubectl), or the one .ci/run installs from the npm registry.

export const KUBERNETES = join(DEPLOY, 'kubernetes')
export const OVERLAYS = ['dev', 'production'] as const
export type Overlay = typeof OVERLAYS[number]

/** $KUBECTL_BIN when set, else kubectl on the PATH. */
export function findKubectl (): string | undefined {
  const override = process.env.KUBECTL_BIN
  const candidates = override ? [override] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map(dir => join(dir, 'kubectl'))
  return candidates.find(file => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

const MISSING = 'kubectl is not installed (.ci/run installs it)'

/** kubectl's path; when it is missing, skips the calling test, or fails it under CI=true, and returns undefined. */
export function requireKubectl (t: BinaryTest): string | undefined {
  const file = findKubectl()
  if (file !== undefined) return file
  if (inCI()) t.fail(`${MISSING}: the Kubernetes manifests must be rendered under CI=true`)
  else t.plan(0, `${MISSING}: skipping; CI=true makes this a failure`)
  return undefined
}

export interface Rendering {
  objects: Manifest[]
  /** What kubectl wrote on stderr: deprecation warnings land there. */
  stderr: string
  status: number | null
}

const renderings = new Map<string, Rendering>()

/** `kubectl kustomize` of a folder under deploy/kubernetes, parsed; once per test file. Do not modify the objects. */
export function render (kubectl: string, folder: string): Rendering {
  const key = `${kubectl}\0${folder}`
  if (!renderings.has(key)) renderings.set(key, renderOnce(kubectl, folder))
  return renderings.get(key)!
}

function renderOnce (kubectl: string, folder: string): Rendering {
  const result = spawnSync(kubectl, ['kustomize', join(KUBERNETES, folder)], { encoding: 'utf8', timeout: 30_000 })
  if (result.error) throw result.error
  const objects = result.status === 0
    ? parseAllDocuments(result.stdout).map(document => {
      if (document.errors.length > 0) throw new Error(`${folder}: ${document.errors[0].message}`)
      return document.toJS() as Manifest
    }).filter(Boolean)
    : []
  return { objects, stderr: result.stderr, status: result.status }
}

/** The kubectl version line, for the test's log. */
export function kubectlVersion (kubectl: string): string {
  const result = spawnSync(kubectl, ['version', '--client'], { encoding: 'utf8', timeout: 10_000 })
  return result.stdout.trim().split('\n').join(', ')
}

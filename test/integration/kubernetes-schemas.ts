import { join } from 'node:path'
import ts from 'typescript'
import { Namespace } from 'kubernetes-models/v1/Namespace'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Service } from 'kubernetes-models/v1/Service'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
import { ROOT } from './servers.ts'

// The rendered objects checked against the API's own schemas: kubernetes-models 5.1 carries the OpenAPI schemas of
// Kubernetes 1.36 (the operator's package, the Prometheus Operator's CRDs). Two checks, because the schemas allow
// what the API server's strict field validation (kubectl's default) refuses:
// - the JSON schema (types, formats, required fields, enums), with the package's validators;
// - no field the schema does not know (a misspelt `readinesProbe` is otherwise silently dropped), with the
//   package's TypeScript declarations and TypeScript's excess property check on each object as a literal.
// Only the kinds listed here are accepted, each at one apiVersion: anything else fails.

export type Manifest = Record<string, any> & { apiVersion: string, kind: string, metadata: { name: string, namespace?: string, labels?: Record<string, string>, annotations?: Record<string, string> } }

interface Kind {
  model: new (data: any) => { validate (): void }
  /** Module and interface whose declaration names every field the API knows. */
  module: string
  type: string
}

export const KINDS: Record<string, Kind> = {
  'v1/Namespace': { model: Namespace, module: 'kubernetes-models/v1/Namespace', type: 'INamespace' },
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service', type: 'IService' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'networking.k8s.io/v1/Ingress': { model: Ingress, module: 'kubernetes-models/networking.k8s.io/v1/Ingress', type: 'IIngress' },
  'networking.k8s.io/v1/NetworkPolicy': { model: NetworkPolicy, module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', type: 'INetworkPolicy' },
  'autoscaling/v2/HorizontalPodAutoscaler': { model: HorizontalPodAutoscaler, module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', type: 'IHorizontalPodAutoscaler' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, module: 'kubernetes-models/policy/v1/PodDisruptionBudget', type: 'IPodDisruptionBudget' },
  'monitoring.coreos.com/v1/ServiceMonitor': { model: ServiceMonitor, module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', type: 'IServiceMonitor' },
  'monitoring.coreos.com/v1/PrometheusRule': { model: PrometheusRule, module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', type: 'IPrometheusRule' }
}

export const kindOf = (manifest: Manifest) => `${manifest.apiVersion}/${manifest.kind}`
export const describe = (manifest: Manifest) => `${manifest.kind} ${manifest.metadata?.name}`

/** Problems with one object against its JSON schema, one line each; empty when it validates. */
export function schemaProblems (manifest: Manifest): string[] {
  const kind = KINDS[kindOf(manifest)]
  if (kind === undefined) return [`${describe(manifest)}: ${kindOf(manifest)} is not a kind these tests know; add it to KINDS in kubernetes-schemas.ts`]
  try {
    const Model = kind.model
    new Model(manifest).validate()
    return []
  } catch (error) {
    const { message, errors } = error as Error & { errors?: Array<{ instancePath: string, message?: string }> }
    return errors?.length ? errors.map(problem => `${describe(manifest)}: ${problem.instancePath} ${problem.message}`) : [`${describe(manifest)}: ${message}`]
  }
}

/**
 * Fields the API does not know, for every object at once (one TypeScript program): "<kind name>: <message>" lines.
 * Objects of unknown kinds are left to schemaProblems.
 */
export function unknownFields (manifests: Manifest[]): string[] {
  const known = manifests.filter(manifest => KINDS[kindOf(manifest)] !== undefined)
  const kinds = [...new Set(known.map(kindOf))]
  const lines = kinds.map((name, i) => `import type { ${KINDS[name].type} as T${i} } from '${KINDS[name].module}'`)
  // One line per object, so a diagnostic's line says which object it is about.
  const first = lines.length
  for (const manifest of known) lines.push(`export const o${lines.length - first}: T${kinds.indexOf(kindOf(manifest))} = ${JSON.stringify(manifest)}`)
  const file = join(ROOT, 'test', 'integration', 'kubernetes-fields.generated.ts')
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: []
  }
  const host = ts.createCompilerHost(options)
  const source = lines.join('\n')
  const { getSourceFile, fileExists, readFile } = host
  host.getSourceFile = (name, version, ...rest) => name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest)
  host.fileExists = name => name === file || fileExists(name)
  host.readFile = name => name === file ? source : readFile(name)
  const program = ts.createProgram([file], options, host)
  const diagnostics = [...program.getSyntacticDiagnostics(program.getSourceFile(file)), ...program.getSemanticDiagnostics(program.getSourceFile(file))]
  return diagnostics.map(diagnostic => {
    const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start!)
    const manifest = known[line - first]
    return `${manifest ? describe(manifest) : 'imports'}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`
  })
}

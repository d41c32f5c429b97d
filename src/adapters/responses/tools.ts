import { createHash } from 'node:crypto'
import type { ToolOrigin } from './types.ts'

// Responses tools as chat tools (wire-apis §1.10). Function tools carry over; custom (free-form) tools become a
// function taking one string `input`; namespace tools (Codex's multi_agent_v1) are flattened to unique chat names,
// restored on the way out; hosted tools (web_search, file_search, mcp ...) have no chat equivalent and are dropped.

const MAX_NAME = 64
const SEPARATOR = '__'

type Tool = Record<string, any>

export interface ChatTool {
  type: 'function'
  function: { name: string, description?: string, parameters: unknown, strict?: boolean }
}

/** Both directions of the name mapping for one request. */
export class ToolNames {
  readonly #origins = new Map<string, ToolOrigin>()
  readonly #flat = new Map<string, string>()

  /** The chat name for a client tool name (and its namespace). Unknown names pass as they are. */
  chatName (name: string, namespace?: string): string {
    return this.#flat.get(key(name, namespace)) ?? (namespace ? flatten(namespace, name) : name)
  }

  /**
   * What a chat tool name the model called stands for. A model that drops the namespace prefix still means the one
   * namespaced tool of that name, if there is exactly one; other unknown names are plain functions.
   */
  origin (chatName: string): ToolOrigin {
    const known = this.#origins.get(chatName)
    if (known) return known
    const inner = [...this.#origins.values()].filter(origin => origin.namespace !== undefined && origin.name === chatName)
    return inner.length === 1 ? inner[0] : { name: chatName, custom: false }
  }

  isCustom (name: string, namespace?: string): boolean {
    return this.origin(this.chatName(name, namespace)).custom
  }

  add (origin: ToolOrigin): string {
    let chatName = origin.namespace ? flatten(origin.namespace, origin.name) : origin.name
    if (this.#origins.has(chatName) && origin.namespace) chatName = withDigest(chatName, `${origin.namespace}\u0000${origin.name}`)
    this.#origins.set(chatName, origin)
    this.#flat.set(key(origin.name, origin.namespace), chatName)
    return chatName
  }
}

const key = (name: string, namespace?: string) => `${namespace ?? ''}\u0000${name}`

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8)

const withDigest = (name: string, seed: string) => `${name.slice(0, MAX_NAME - 9)}_${digest(seed)}`

/** `multi_agent_v1__spawn_agent`; past 64 characters, shortened with a digest so it stays unique. */
export function flatten (namespace: string, name: string): string {
  const joined = `${namespace}${SEPARATOR}${name}`
  return joined.length <= MAX_NAME ? joined : withDigest(joined, joined)
}

const EMPTY_PARAMETERS = { type: 'object', properties: {} }

function functionTool (tool: Tool, name: string): ChatTool {
  const fn: ChatTool['function'] = { name, parameters: tool.parameters ?? EMPTY_PARAMETERS }
  if (typeof tool.description === 'string') fn.description = tool.description
  if (typeof tool.strict === 'boolean') fn.strict = tool.strict
  return { type: 'function', function: fn }
}

/** A free-form tool as a function of one string; a grammar, if any, is described to the model. */
function customTool (tool: Tool, name: string): ChatTool {
  const format = tool.format
  let description = typeof tool.description === 'string' ? tool.description : ''
  if (format?.type === 'grammar' && typeof format.definition === 'string') {
    description += `${description ? '\n\n' : ''}The input must follow this ${String(format.syntax ?? '')} grammar:\n${format.definition}`
  }
  const fn: ChatTool['function'] = {
    name,
    parameters: { type: 'object', properties: { input: { type: 'string', description: 'The raw input for the tool.' } }, required: ['input'] }
  }
  if (description) fn.description = description
  return { type: 'function', function: fn }
}

/** The chat tools for a request's `tools`, and the names they were given. */
export function chatTools (tools: unknown): { tools: ChatTool[], names: ToolNames } {
  const names = new ToolNames()
  const out: ChatTool[] = []
  const add = (tool: Tool, namespace?: string) => {
    if (typeof tool?.name !== 'string' || tool.name === '') return
    if (tool.type === 'function') out.push(functionTool(tool, names.add({ name: tool.name, namespace, custom: false })))
    else if (tool.type === 'custom') out.push(customTool(tool, names.add({ name: tool.name, namespace, custom: true })))
  }
  for (const tool of Array.isArray(tools) ? tools as Tool[] : []) {
    if (tool?.type === 'namespace' && Array.isArray(tool.tools) && typeof tool.name === 'string') {
      for (const inner of tool.tools as Tool[]) add(inner, tool.name)
    } else {
      add(tool)
    }
  }
  return { tools: out, names }
}

/**
 * `tool_choice` in chat terms: the strings as they are; a named function or custom tool as chat's
 * `{type:"function", function:{name}}` (flattened); `allowed_tools` as its mode; a hosted tool's choice (which
 * has nothing to call here) as `auto`. Undefined leaves chat's default.
 */
export function chatToolChoice (choice: unknown, names: ToolNames): unknown {
  if (choice === undefined || choice === null) return undefined
  if (typeof choice === 'string') return choice
  const value = choice as Tool
  if ((value.type === 'function' || value.type === 'custom') && typeof value.name === 'string') {
    return { type: 'function', function: { name: names.chatName(value.name, value.namespace) } }
  }
  if (value.type === 'allowed_tools') return value.mode === 'required' ? 'required' : 'auto'
  return 'auto'
}

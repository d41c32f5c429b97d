import { CLOSE, isJson, isRecord, OPEN, TOOL_FIELDS } from './protocol.ts'

const isToolHistory = (message: unknown) => isRecord(message) &&
  (message.role === 'tool' || (message.role === 'assistant' && Array.isArray(message.tool_calls) && message.tool_calls.length > 0))

/** The function tools the model may use under this tool_choice, as rendered into the prompt. */
function selectTools (tools: unknown, choice: unknown): Array<Record<string, unknown>> {
  if (choice === 'none' || !Array.isArray(tools)) return []
  let usable = tools.filter(tool => isRecord(tool) && tool.type === 'function' && isRecord(tool.function) &&
    typeof tool.function.name === 'string' && tool.function.name !== '')
  if (isRecord(choice) && choice.type === 'allowed_tools' && isRecord(choice.allowed_tools) && Array.isArray(choice.allowed_tools.tools)) {
    const allowed = new Set(choice.allowed_tools.tools.map((tool: any) => tool?.function?.name ?? tool?.name))
    usable = usable.filter(tool => allowed.has(tool.function.name))
  }
  return usable.map(tool => {
    // `strict` tells a native implementation how to decode; it means nothing to the model.
    const fn: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(tool.function as Record<string, unknown>)) if (key !== 'strict') fn[key] = value
    return { type: 'function', function: fn }
  })
}

/** What tool_choice demands, as one sentence for the prompt. */
function choiceRule (choice: unknown): string {
  if (choice === 'required') return 'This reply must contain at least one tool call.'
  if (isRecord(choice)) {
    const name = choice.type === 'function' ? choice.function?.name : undefined
    if (typeof name === 'string') return `This reply must contain a call to the function ${JSON.stringify(name)}.`
    if (choice.type === 'allowed_tools' && choice.allowed_tools?.mode === 'required') return 'This reply must contain at least one tool call.'
  }
  return 'Call a function only when it helps with the request; otherwise answer in plain text, without any <tool_call> block.'
}

function toolPrompt (tools: Array<Record<string, unknown>>, choice: unknown, parallel: unknown): string {
  const lines = [
    '# Tools',
    '',
    'The functions listed below are available to you. Each one is described by a JSON object (name, description, and a JSON Schema of its parameters) inside <tools></tools>:',
    '<tools>',
    ...tools.map(tool => JSON.stringify(tool)),
    '</tools>',
    '',
    'To call a function, write a <tool_call></tool_call> block that holds a single JSON object with the function name and an object of arguments matching its parameters:',
    '<tool_call>',
    '{"name": "<function name>", "arguments": {"<parameter>": "<value>"}}',
    '</tool_call>',
    parallel === false
      ? 'Make at most one call per reply: write a single block.'
      : 'To make several calls, write one block per call, one right after another.',
    'Any text for the user goes before the blocks. The results come back in the next user message, each inside <tool_response></tool_response>, in the order of the calls.',
    choiceRule(choice)
  ]
  return lines.join('\n')
}

const NO_TOOLS_NOW = 'No tools are available for this reply: answer in plain text, without any <tool_call> block.'

function argumentsText (args: unknown): string {
  if (typeof args === 'string') {
    if (args.trim() === '') return '{}'
    return isJson(args) ? args : JSON.stringify(args)
  }
  return args === undefined || args === null ? '{}' : JSON.stringify(args)
}

const callBlock = (call: any) =>
  `${OPEN}\n{"name": ${JSON.stringify(String(call?.function?.name ?? ''))}, "arguments": ${argumentsText(call?.function?.arguments)}}\n${CLOSE}`

/** An assistant message with tool_calls: the calls become <tool_call> blocks after its content. */
function assistantWithBlocks (message: Record<string, any>): Record<string, any> {
  const calls: unknown[] = message.tool_calls
  const blocks = calls.map(callBlock).join('\n')
  let content: unknown = message.content
  if (Array.isArray(content)) {
    content = blocks === '' ? content : [...content, { type: 'text', text: content.length > 0 ? `\n${blocks}` : blocks }]
  } else if (typeof content === 'string' && content !== '') {
    content = blocks === '' ? content : `${content}\n${blocks}`
  } else {
    content = blocks
  }
  const out: Record<string, any> = {}
  for (const [key, value] of Object.entries(message)) {
    if (key === 'tool_calls') {
      if (!('content' in message)) out.content = content
    } else {
      out[key] = key === 'content' ? content : value
    }
  }
  return out
}

/** Consecutive tool messages: one user turn with a <tool_response> block per result, in order. */
function toolResponses (run: Array<Record<string, any>>): Record<string, any> {
  const textOnly = run.every(message => !Array.isArray(message.content) ||
    message.content.every((part: any) => isRecord(part) && part.type === 'text' && typeof part.text === 'string'))
  const text = (content: unknown) => typeof content === 'string'
    ? content
    : Array.isArray(content) ? content.map((part: any) => part.text).join('') : ''
  if (textOnly) {
    return { role: 'user', content: run.map(message => `<tool_response>\n${text(message.content)}\n</tool_response>`).join('\n') }
  }
  // Some result carries a non-text part (an image): keep the parts, with the tags as text parts around them.
  const parts: any[] = []
  const addText = (value: string) => {
    const last = parts[parts.length - 1]
    if (isRecord(last) && last.type === 'text' && typeof last.text === 'string' && Object.keys(last).length === 2) last.text += value
    else parts.push({ type: 'text', text: value })
  }
  run.forEach((message, i) => {
    addText(`${i > 0 ? '\n' : ''}<tool_response>\n`)
    if (Array.isArray(message.content)) {
      for (const part of message.content) {
        if (isRecord(part) && part.type === 'text' && typeof part.text === 'string') addText(part.text)
        else parts.push(part)
      }
    } else {
      addText(text(message.content))
    }
    addText('\n</tool_response>')
  })
  return { role: 'user', content: parts }
}

function convertHistory (messages: unknown[]): unknown[] {
  const out: unknown[] = []
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]
    if (isRecord(message) && message.role === 'tool') {
      const run = [message]
      while (i + 1 < messages.length && isRecord(messages[i + 1]) && (messages[i + 1] as Record<string, any>).role === 'tool') {
        run.push(messages[++i] as Record<string, any>)
      }
      out.push(toolResponses(run))
    } else if (isRecord(message) && message.role === 'assistant' && Array.isArray(message.tool_calls)) {
      out.push(assistantWithBlocks(message))
    } else {
      out.push(message)
    }
  }
  return out
}

function withSystemPrompt (messages: unknown[], prompt: string): unknown[] {
  const at = messages.findIndex(message => isRecord(message) && (message.role === 'system' || message.role === 'developer'))
  if (at < 0) return [{ role: 'system', content: prompt }, ...messages]
  const system = messages[at] as Record<string, any>
  const content = system.content
  let appended: unknown
  if (Array.isArray(content)) appended = [...content, { type: 'text', text: content.length > 0 ? `\n\n${prompt}` : prompt }]
  else if (typeof content === 'string' && content !== '') appended = `${content}\n\n${prompt}`
  else appended = prompt
  const copy = [...messages]
  copy[at] = { ...system, content: appended }
  return copy
}

/**
 * Rewrites a chat request body for an upstream without native tools: tools (honouring tool_choice: 'none' drops
 * them, 'required' demands a call, {type:'function',function:{name}} demands that one, {type:'allowed_tools'}
 * narrows the list) rendered into the system prompt (appended to the first system/developer message, string or
 * array content, or a new system message first); assistant tool_calls turned into <tool_call> blocks in their
 * content (content null → ''); role 'tool' messages turned into user messages with <tool_response> blocks
 * (consecutive ones merged into one user turn, in order); tools, tool_choice, parallel_tool_calls removed. Every
 * other field and message kept as is, key order preserved. Returns the same object when there are no tool fields
 * and no tool history. Never mutates its input.
 */
export function toXmlToolRequest (body: Record<string, any>): Record<string, any> {
  const messages: unknown[] | undefined = Array.isArray(body.messages) ? body.messages : undefined
  const hasToolFields = Object.keys(body).some(key => TOOL_FIELDS.has(key))
  const hasHistory = messages?.some(isToolHistory) ?? false
  if (!hasToolFields && !hasHistory) return body

  const choice = body.tool_choice
  const tools = selectTools(body.tools, choice)
  let prompt = ''
  if (tools.length > 0) prompt = toolPrompt(tools, choice, body.parallel_tool_calls)
  else if (choice === 'none' && hasHistory) prompt = NO_TOOLS_NOW

  let rewritten = messages && hasHistory ? convertHistory(messages) : messages
  if (prompt !== '') rewritten = withSystemPrompt(rewritten ?? [], prompt)

  const out: Record<string, any> = {}
  for (const [key, value] of Object.entries(body)) {
    if (TOOL_FIELDS.has(key)) continue
    out[key] = key === 'messages' ? rewritten : value
  }
  if (!('messages' in out) && rewritten) out.messages = rewritten
  return out
}

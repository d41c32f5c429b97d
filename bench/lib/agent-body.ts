// An agent-size chat request in Roo Code's shape, built deterministically (no randomness, no files read), so
// every run and every target sends the very same bytes:
// - a long system prompt (about 40 KB): role, XML tool docs (one section per tool with parameters, usage and an
//   example), capabilities, rules, system information, objective;
// - about 60 messages of history, user and assistant in turn: the task with environment details, then assistant
//   turns using XML tools and user turns carrying the tool results (file excerpts: code-like text);
// - UTF-8 text with some non-ASCII (accents, CJK) in comments, the task and the answers;
// - `tools` (function tools with JSON schemas, as Roo Code's native tool calling sends them).
// The whole JSON body is about 120 KB. `agentBody(true)` asks for a stream with usage, as Roo Code does.

interface ToolDoc {
  name: string
  description: string
  params: Array<{ name: string, type: 'string' | 'integer' | 'boolean', required: boolean, description: string }>
  example: string
}

const TOOLS: ToolDoc[] = [
  { name: 'read_file', description: 'Request to read the contents of one or more files. The tool outputs line-numbered content (e.g. "1 | const x = 1") for easy reference when creating diffs or discussing code. Use line ranges to efficiently read specific portions of large files.', params: [{ name: 'path', type: 'string', required: true, description: 'File path (relative to workspace directory /home/dev/projects/atlas)' }, { name: 'start_line', type: 'integer', required: false, description: 'The starting line number to read from (1-based)' }, { name: 'end_line', type: 'integer', required: false, description: 'The ending line number to read to (1-based, inclusive)' }], example: '<read_file>\n<path>src/server/router.ts</path>\n<start_line>1</start_line>\n<end_line>80</end_line>\n</read_file>' },
  { name: 'fetch_instructions', description: 'Request to fetch instructions to perform a task, such as creating an MCP server or creating a mode.', params: [{ name: 'task', type: 'string', required: true, description: 'The task to get instructions for: create_mcp_server or create_mode' }], example: '<fetch_instructions>\n<task>create_mcp_server</task>\n</fetch_instructions>' },
  { name: 'search_files', description: 'Request to perform a regex search across files in a specified directory, providing context-rich results. This tool searches for patterns or specific content across multiple files, displaying each match with encapsulating context.', params: [{ name: 'path', type: 'string', required: true, description: 'The path of the directory to search in (relative to the current workspace directory). This directory will be recursively searched.' }, { name: 'regex', type: 'string', required: true, description: 'The regular expression pattern to search for. Uses Rust regex syntax.' }, { name: 'file_pattern', type: 'string', required: false, description: 'Glob pattern to filter files (e.g. \'*.ts\' for TypeScript files). If not provided, it will search all files (*).' }], example: '<search_files>\n<path>src</path>\n<regex>createSession\\(</regex>\n<file_pattern>*.ts</file_pattern>\n</search_files>' },
  { name: 'list_files', description: 'Request to list files and directories within the specified directory. If recursive is true, it will list all files and directories recursively. If recursive is false or not provided, it will only list the top-level contents. Do not use this tool to confirm the existence of files you may have created.', params: [{ name: 'path', type: 'string', required: true, description: 'The path of the directory to list contents for (relative to the current workspace directory)' }, { name: 'recursive', type: 'boolean', required: false, description: 'Whether to list files recursively. Use true for recursive listing, false or omit for top-level only.' }], example: '<list_files>\n<path>src/server</path>\n<recursive>false</recursive>\n</list_files>' },
  { name: 'list_code_definition_names', description: 'Request to list definition names (classes, functions, methods, etc.) from source code. This tool can analyze either a single file or all files at the top level of a specified directory. It provides insights into the codebase structure and important constructs, encapsulating high-level concepts and relationships that are crucial for understanding the overall architecture.', params: [{ name: 'path', type: 'string', required: true, description: 'The path of the file or directory (relative to the current working directory) to analyze.' }], example: '<list_code_definition_names>\n<path>src/server</path>\n</list_code_definition_names>' },
  { name: 'apply_diff', description: 'Request to apply PRECISE, TARGETED modifications to an existing file by searching for specific sections of content and replacing them. This tool is for SURGICAL EDITS ONLY - specific changes to existing code. You can perform multiple distinct search and replace operations within a single apply_diff call by providing multiple SEARCH/REPLACE blocks in the diff parameter. The SEARCH section must exactly match existing content including whitespace and indentation.', params: [{ name: 'path', type: 'string', required: true, description: 'The path of the file to modify (relative to the current workspace directory)' }, { name: 'diff', type: 'string', required: true, description: 'The search/replace block defining the changes, with :start_line: markers.' }], example: '<apply_diff>\n<path>src/server/session.ts</path>\n<diff>\n<<<<<<< SEARCH\n:start_line:12\n-------\n  const ttl = 60\n=======\n  const ttl = config.sessionTtl\n>>>>>>> REPLACE\n</diff>\n</apply_diff>' },
  { name: 'write_to_file', description: 'Request to write content to a file. This tool is primarily used for creating new files or for scenarios where a complete rewrite of an existing file is intentionally required. If the file exists, it will be overwritten. If it doesn\'t exist, it will be created. This tool will automatically create any directories needed to write the file.', params: [{ name: 'path', type: 'string', required: true, description: 'The path of the file to write to (relative to the current workspace directory)' }, { name: 'content', type: 'string', required: true, description: 'The content to write to the file. ALWAYS provide the COMPLETE intended content of the file, without any truncation or omissions.' }, { name: 'line_count', type: 'integer', required: true, description: 'The number of lines in the file. Make sure to compute this based on the actual content of the file, not the number of lines in the content you\'re providing.' }], example: '<write_to_file>\n<path>src/config/defaults.json</path>\n<content>\n{\n  "apiEndpoint": "https://api.example.com",\n  "timeout": 30000\n}\n</content>\n<line_count>4</line_count>\n</write_to_file>' },
  { name: 'insert_content', description: 'Use this tool specifically for adding new lines of content into a file without modifying existing content. Specify the line number to insert before, or use line 0 to append to the end. Ideal for adding imports, functions, configuration blocks, log entries, or any multi-line text block.', params: [{ name: 'path', type: 'string', required: true, description: 'File path relative to workspace directory' }, { name: 'line', type: 'integer', required: true, description: 'Line number where content will be inserted (1-based). Use 0 to append at end of file.' }, { name: 'content', type: 'string', required: true, description: 'The content to insert at the specified line' }], example: '<insert_content>\n<path>src/utils.ts</path>\n<line>1</line>\n<content>\nimport { sum } from \'./math\'\n</content>\n</insert_content>' },
  { name: 'search_and_replace', description: 'Use this tool to find and replace specific text strings or patterns (using regex) within a file. It\'s suitable for targeted replacements across multiple locations within the file. Supports literal text and regex patterns, case sensitivity options, and optional line ranges. Shows a diff preview before applying changes.', params: [{ name: 'path', type: 'string', required: true, description: 'The path of the file to modify (relative to the current workspace directory)' }, { name: 'search', type: 'string', required: true, description: 'The text or pattern to search for' }, { name: 'replace', type: 'string', required: true, description: 'The text to replace matches with' }, { name: 'use_regex', type: 'boolean', required: false, description: 'Set to true to treat search as a regex pattern' }], example: '<search_and_replace>\n<path>src/server/router.ts</path>\n<search>oldHandler</search>\n<replace>newHandler</replace>\n</search_and_replace>' },
  { name: 'execute_command', description: 'Request to execute a CLI command on the system. Use this when you need to perform system operations or run specific commands to accomplish any step in the user\'s task. You must tailor your command to the user\'s system and provide a clear explanation of what the command does. Prefer relative commands and paths that avoid location sensitivity for terminal consistency.', params: [{ name: 'command', type: 'string', required: true, description: 'The CLI command to execute. This should be valid for the current operating system.' }, { name: 'cwd', type: 'string', required: false, description: 'The working directory to execute the command in (default: /home/dev/projects/atlas)' }], example: '<execute_command>\n<command>npm run test -- src/server/session.test.ts</command>\n</execute_command>' },
  { name: 'ask_followup_question', description: 'Ask the user a question to gather additional information needed to complete the task. This tool should be used when you encounter ambiguities, need clarification, or require more details to proceed effectively. Provide 2-4 suggested answers, each a complete, actionable answer with no placeholders.', params: [{ name: 'question', type: 'string', required: true, description: 'The question to ask the user. This should be a clear, specific question that addresses the information you need.' }, { name: 'follow_up', type: 'string', required: true, description: 'A list of 2-4 suggested answers, each in its own <suggest> tag.' }], example: '<ask_followup_question>\n<question>Which session store should the server use?</question>\n<follow_up>\n<suggest>Redis, as in production</suggest>\n<suggest>The in-memory store</suggest>\n</follow_up>\n</ask_followup_question>' },
  { name: 'attempt_completion', description: 'After each tool use, the user will respond with the result of that tool use. Once you\'ve received the results of tool uses and can confirm that the task is complete, use this tool to present the result of your work to the user. The user may respond with feedback if they are not satisfied with the result.', params: [{ name: 'result', type: 'string', required: true, description: 'The result of the task. Formulate this result in a way that is final and does not require further input from the user.' }], example: '<attempt_completion>\n<result>\nSessions now expire after the configured TTL, and the tests cover it.\n</result>\n</attempt_completion>' },
  { name: 'switch_mode', description: 'Request to switch to a different mode. This tool allows modes to request switching to another mode when needed, such as switching to Code mode to make code changes. The user must approve the mode switch.', params: [{ name: 'mode_slug', type: 'string', required: true, description: 'The slug of the mode to switch to (e.g., "code", "ask", "architect")' }, { name: 'reason', type: 'string', required: false, description: 'The reason for switching modes' }], example: '<switch_mode>\n<mode_slug>code</mode_slug>\n<reason>Need to make code changes</reason>\n</switch_mode>' },
  { name: 'new_task', description: 'This will let you create a new task instance in the chosen mode using your provided message.', params: [{ name: 'mode', type: 'string', required: true, description: 'The slug of the mode to start the new task in (e.g., "code", "debug", "architect").' }, { name: 'message', type: 'string', required: true, description: 'The initial user message or instructions for this new task.' }], example: '<new_task>\n<mode>code</mode>\n<message>Implement the session expiry described in docs/sessions.md.</message>\n</new_task>' },
  { name: 'update_todo_list', description: 'Replace the entire TODO list with an updated checklist reflecting the current state. Always provide the full list; the system will overwrite the previous one. This tool is designed for step-by-step task tracking, allowing you to confirm completion of each step before updating, update multiple task statuses at once.', params: [{ name: 'todos', type: 'string', required: true, description: 'The full checklist in Markdown format: [ ] pending, [x] completed, [-] in progress.' }], example: '<update_todo_list>\n<todos>\n[x] Read the session store\n[-] Add the TTL setting\n[ ] Write the tests\n</todos>\n</update_todo_list>' }
]

const RULES = [
  'The project base directory is: /home/dev/projects/atlas',
  'All file paths must be relative to this directory. However, commands may change directories in terminals, so respect working directory specified by the response to <execute_command>.',
  'You cannot `cd` into a different directory to complete a task. You are stuck operating from \'/home/dev/projects/atlas\', so be sure to pass in the correct \'path\' parameter when using tools that require a path.',
  'Do not use the ~ character or $HOME to refer to the home directory.',
  'Before using the execute_command tool, you must first think about the SYSTEM INFORMATION context provided to understand the user\'s environment and tailor your commands to ensure they are compatible with their system.',
  'When using the search_files tool, craft your regex patterns carefully to balance specificity and flexibility. Based on the user\'s task you may use it to find code patterns, TODO comments, function definitions, or any text-based information across the project.',
  'When creating a new project (such as an app, website, or any software project), organize all new files within a dedicated project directory unless the user specifies otherwise.',
  'For editing files, you have access to these tools: apply_diff (for surgical edits - targeted changes to specific lines or functions), write_to_file (for creating new files or complete file rewrites), insert_content (for adding lines to files), search_and_replace (for finding and replacing individual pieces of text).',
  'You should always prefer using other editing tools over write_to_file when making changes to existing files since write_to_file is much slower and cannot handle large files.',
  'Some modes have restrictions on which files they can edit. If you attempt to edit a restricted file, the operation will be rejected with a FileRestrictionError that will specify which file patterns are allowed for the current mode.',
  'Be sure to consider the type of project (e.g. Python, JavaScript, web application) when determining the appropriate structure and files to include.',
  'When making changes to code, always consider the context in which the code is being used. Ensure that your changes are compatible with the existing codebase and that they follow the project\'s coding standards and best practices.',
  'Do not ask for more information than necessary. Use the tools provided to accomplish the user\'s request efficiently and effectively. When you\'ve completed your task, you must use the attempt_completion tool to present the result to the user.',
  'You are only allowed to ask the user questions using the ask_followup_question tool. Use this tool only when you need additional details to complete a task, and be sure to use a clear and concise question that will help you move forward with the task.',
  'When executing commands, if you don\'t see the expected output, assume the terminal executed the command successfully and proceed with the task.',
  'The user may provide a file\'s contents directly in their message, in which case you shouldn\'t use the read_file tool to get the file contents again since you already have it.',
  'Your goal is to try to accomplish the user\'s task, NOT engage in a back and forth conversation.',
  'NEVER end attempt_completion result with a question or request to engage in further conversation! Formulate the end of your result in a way that is final and does not require further input from the user.',
  'You are STRICTLY FORBIDDEN from starting your messages with "Great", "Certainly", "Okay", "Sure". You should NOT be conversational in your responses, but rather direct and to the point.',
  'When presented with images, utilize your vision capabilities to thoroughly examine them and extract meaningful information. Incorporate these insights into your thought process as you accomplish the user\'s task.',
  'At the end of each user message, you will automatically receive environment_details. This information is not written by the user themselves, but is auto-generated to provide potentially relevant context about the project structure and environment.',
  'Before executing commands, check the "Actively Running Terminals" section in environment_details. If present, consider how these active processes might impact your task.',
  'MCP operations should be used one at a time, similar to other tool usage. Wait for confirmation of success before proceeding with additional operations.',
  'It is critical you wait for the user\'s response after each tool use, in order to confirm the success of the tool use.'
]

function toolSection (t: ToolDoc): string {
  const params = t.params.map(p => `- ${p.name}: (${p.required ? 'required' : 'optional'}) ${p.description}`).join('\n')
  const usage = `<${t.name}>\n${t.params.map(p => `<${p.name}>${p.name.replace(/_/g, ' ')} here</${p.name}>`).join('\n')}\n</${t.name}>`
  return `## ${t.name}\nDescription: ${t.description}\nParameters:\n${params}\nUsage:\n${usage}\n\nExample: Requesting to use ${t.name}\n${t.example}\n`
}

const MODES = ['🏗️ Architect', '💻 Code', '❓ Ask', '🪲 Debug', '🪃 Orchestrator']

function systemPrompt (): string {
  const parts: string[] = []
  parts.push('You are Roo, a highly skilled software engineer with extensive knowledge in many programming languages, frameworks, design patterns, and best practices.\n')
  parts.push('====\n\nMARKDOWN RULES\n\nALL responses MUST show ANY `language construct` OR filename reference as clickable, exactly as [`filename OR language.declaration()`](relative/file/path.ext:line); line is required for `syntax` and optional for filename links. This applies to ALL markdown responses and ALSO those in <attempt_completion>\n')
  parts.push('====\n\nTOOL USE\n\nYou have access to a set of tools that are executed upon the user\'s approval. You can use one tool per message, and will receive the result of that tool use in the user\'s response. You use tools step-by-step to accomplish a given task, with each tool use informed by the result of the previous tool use.\n\n# Tool Use Formatting\n\nTool uses are formatted using XML-style tags. The tool name itself becomes the XML tag name. Each parameter is enclosed within its own set of tags. Here\'s the structure:\n\n<actual_tool_name>\n<parameter1_name>value1</parameter1_name>\n<parameter2_name>value2</parameter2_name>\n...\n</actual_tool_name>\n\nAlways use the actual tool name as the XML tag name for proper parsing and execution.\n\n# Tools\n')
  for (const t of TOOLS) parts.push(toolSection(t))
  parts.push('# Tool Use Guidelines\n\n' + [
    'Assess what information you already have and what information you need to proceed with the task.',
    'Choose the most appropriate tool based on the task and the tool descriptions provided. Assess if you need additional information to proceed, and which of the available tools would be most effective for gathering this information.',
    'If multiple actions are needed, use one tool at a time per message to accomplish the task iteratively, with each tool use being informed by the result of the previous tool use. Do not assume the outcome of any tool use.',
    'Formulate your tool use using the XML format specified for each tool.',
    'After each tool use, the user will respond with the result of that tool use. This result will provide you with the necessary information to continue your task or make further decisions.',
    'ALWAYS wait for user confirmation after each tool use before proceeding. Never assume the success of a tool use without explicit confirmation of the result from the user.'
  ].map((g, i) => `${i + 1}. ${g}`).join('\n') + '\n')
  parts.push('====\n\nCAPABILITIES\n\n- You have access to tools that let you execute CLI commands on the user\'s computer, list files, view source code definitions, regex search, read and write files, and ask follow-up questions. These tools help you effectively accomplish a wide range of tasks, such as writing code, making edits or improvements to existing files, understanding the current state of a project, performing system operations, and much more.\n- When the user initially gives you a task, a recursive list of all filepaths in the current workspace directory (\'/home/dev/projects/atlas\') will be included in environment_details. This provides an overview of the project\'s file structure, offering key insights into the project from directory/file names (how developers conceptualize and organize their code) and file extensions (the language used).\n- You can use search_files to perform regex searches across files in a specified directory, outputting context-rich results that include surrounding lines. This is particularly useful for understanding code patterns, finding specific implementations, or identifying areas that need refactoring.\n- You can use the execute_command tool to run commands on the user\'s computer whenever you feel it can help accomplish the user\'s task. When you need to execute a CLI command, you must provide a clear explanation of what the command does.\n')
  parts.push('====\n\nMODES\n\n' + MODES.map(m => `  * "${m}" mode (${m.split(' ')[1].toLowerCase()}) - Use this mode when the task calls for ${m.split(' ')[1].toLowerCase()} work: planning, writing, explaining or fixing code as its name says.`).join('\n') + '\n')
  parts.push('====\n\nRULES\n\n' + RULES.map(r => `- ${r}`).join('\n') + '\n')
  parts.push('====\n\nSYSTEM INFORMATION\n\nOperating System: Linux 6.8\nDefault Shell: /bin/bash\nHome Directory: /home/dev\nCurrent Workspace Directory: /home/dev/projects/atlas\n\nThe Current Workspace Directory is the active VS Code project directory, and is therefore the default directory for all tool operations.\n')
  parts.push('====\n\nOBJECTIVE\n\nYou accomplish a given task iteratively, breaking it down into clear steps and working through them methodically.\n\n1. Analyze the user\'s task and set clear, achievable goals to accomplish it. Prioritize these goals in a logical order.\n2. Work through these goals sequentially, utilizing available tools one at a time as necessary.\n3. Remember, you have extensive capabilities with access to a wide range of tools that can be used in powerful and clever ways as necessary to accomplish each goal.\n4. Once you\'ve completed the user\'s task, you must use the attempt_completion tool to present the result of the task to the user.\n5. The user may provide feedback, which you can use to make improvements and try again.\n')
  parts.push('====\n\nUSER\'S CUSTOM INSTRUCTIONS\n\nThe following additional instructions are provided by the user, and should be followed to the best of your ability without interfering with the TOOL USE guidelines.\n\nLanguage Preference:\nYou should always speak and think in the "English" (en) language unless the user gives you instructions below to do otherwise.\n\nRules from .roo/rules-code/conventions.md:\n')
  // Project rules, numbered, until the prompt reaches about 40 KB (the real ones are a team's conventions file).
  const areas = ['the session store', 'the HTTP router', 'the billing module', 'the i18n layer (français, español, 日本語, 中文)', 'the job queue', 'the metrics exporter']
  const base = parts.join('\n')
  const rules: string[] = []
  for (let i = 0; base.length + rules.join('\n').length < 39_500; i++) {
    rules.push(`${i + 1}. In ${areas[i % areas.length]}, keep functions under ${20 + (i % 5) * 10} lines, name errors after what failed (e.g. \`${['SessionExpired', 'RouteNotFound', 'InvoiceLocked', 'MissingTranslation', 'JobTimedOut', 'ScrapeFailed'][i % 6]}Error\`), and cover every branch with a test in the matching \`*.test.ts\`; résumé of rule ${i + 1}: déjà vérifié, 已检查.`)
  }
  return base + '\n' + rules.join('\n') + '\n'
}

const EXCERPT_LINES = 24

const FILES = ['src/server/session.ts', 'src/server/router.ts', 'src/billing/invoice.ts', 'src/i18n/messages.ts', 'src/jobs/queue.ts', 'src/metrics/exporter.ts', 'src/server/config.ts', 'src/jobs/worker.ts', 'src/billing/tax.ts', 'src/i18n/plural.ts']

/** Code-like text: a line-numbered excerpt of an imaginary TypeScript file, as read_file returns it. */
function fileExcerpt (file: string, turn: number, lines: number): string {
  const out: string[] = []
  const stem = file.split('/').pop()!.replace('.ts', '')
  const Name = stem[0].toUpperCase() + stem.slice(1)
  const start = 1 + (turn * 37) % 400
  for (let i = 0; i < lines; i++) {
    const n = start + i
    let line: string
    switch (i % 12) {
      case 0: line = `import { ${Name}Store, type ${Name}Options } from './${stem}-store.ts'`; break
      case 1: line = `// ${['Keeps entries until they expire.', 'Gère les délais d\'expiration (réessayé après échec).', '按租户分组的缓存条目。', 'Zählt Einträge pro Mandant für die Übersicht.'][n % 4]}`; break
      case 2: line = `export class ${Name}${n} implements ${Name}Options {`; break
      case 3: line = '  readonly #entries = new Map<string, { value: unknown, expiresAt: number }>()'; break
      case 4: line = `  constructor (private readonly ttlMs = ${1000 * (n % 60 + 1)}, private readonly now = () => Date.now()) {}`; break
      case 5: line = '  get (key: string): unknown {'; break
      case 6: line = '    const entry = this.#entries.get(key)'; break
      case 7: line = '    if (entry === undefined || entry.expiresAt <= this.now()) return undefined // 过期 → undefined'; break
      case 8: line = '    return entry.value'; break
      case 9: line = '  }'; break
      case 10: line = '  set (key: string, value: unknown): void { this.#entries.set(key, { value, expiresAt: this.now() + this.ttlMs }) }'; break
      default: line = `}  // end of ${Name}${n - 10} — "${stem}" line ${n}`
    }
    out.push(`${String(n).padStart(4)} | ${line}`)
  }
  return out.join('\n')
}

function environmentDetails (turn: number): string {
  const time = new Date(Date.UTC(2026, 10, 24, 9, 0, turn * 47)).toISOString()
  return `<environment_details>\n# VSCode Visible Files\n${FILES[turn % FILES.length]}\n\n# VSCode Open Tabs\n${FILES.slice(0, 4 + (turn % 4)).join(',')}\n\n# Current Time\nCurrent time in ISO 8601 UTC format: ${time}\nUser time zone: Europe/Paris, UTC+1:00\n\n# Current Cost\n$${(turn * 0.0137).toFixed(2)}\n\n# Current Mode\n<slug>code</slug>\n<name>💻 Code</name>\n<model>qwen3-coder-plus</model>\n</environment_details>`
}

type Message = { role: 'system' | 'user' | 'assistant', content: string | Array<{ type: 'text', text: string }> }

function history (): Message[] {
  const messages: Message[] = []
  messages.push({
    role: 'user',
    content: [
      { type: 'text', text: '<task>\nSessions never expire: add a TTL to the session store (configurable, default 30 min), make the router answer 401 with `session_expired` for an expired one, and translate the message (français: « Votre session a expiré », 日本語: 「セッションの有効期限が切れました」, 中文: 「会话已过期」). Keep the tests green.\n</task>' },
      { type: 'text', text: environmentDetails(0) + '\n\n# Current Workspace Directory (/home/dev/projects/atlas) Files\n' + FILES.concat(FILES.map(f => f.replace('.ts', '.test.ts'))).join('\n') + '\npackage.json\ntsconfig.json\nREADME.md\n' }
    ]
  })
  // 29 exchanges after the task: an assistant tool use, then the user's tool result; then a last assistant turn
  // and the user's feedback: 61 messages of history in all.
  for (let turn = 1; turn <= 29; turn++) {
    const file = FILES[turn % FILES.length]
    const thinking = `<thinking>\nStep ${turn}: ${['I need to see how the store keeps entries before adding the TTL.', 'Le routeur doit renvoyer 401 avec session_expired ; je vérifie le gestionnaire.', '先确认翻译文件的结构，再添加消息。', 'The worker reads sessions too; check that it handles an expired one.'][turn % 4]}\n</thinking>`
    const tool = turn % 5 === 4
      ? `<apply_diff>\n<path>${file}</path>\n<diff>\n<<<<<<< SEARCH\n:start_line:${turn * 3}\n-------\n    if (entry === undefined) return undefined\n=======\n    if (entry === undefined || entry.expiresAt <= this.now()) return undefined\n>>>>>>> REPLACE\n</diff>\n</apply_diff>`
      : `<read_file>\n<path>${file}</path>\n<start_line>${1 + (turn * 37) % 400}</start_line>\n<end_line>${(turn * 37) % 400 + EXCERPT_LINES}</end_line>\n</read_file>`
    messages.push({ role: 'assistant', content: `${thinking}\n\n${tool}` })
    const result = turn % 5 === 4
      ? `[apply_diff for '${file}'] Result:\n<file_write_result>\n<path>${file}</path>\n<operation>modified</operation>\n<notice>\n<i>You do not need to re-read the file, as you have seen all changes</i>\n<i>Proceed with the task using these changes as the new baseline.</i>\n</notice>\n</file_write_result>`
      : `[read_file for '${file}'] Result:\n<files>\n<file><path>${file}</path>\n<content lines="${1 + (turn * 37) % 400}-${(turn * 37) % 400 + EXCERPT_LINES}">\n${fileExcerpt(file, turn, EXCERPT_LINES)}\n</content>\n</file>\n</files>`
    messages.push({ role: 'user', content: [{ type: 'text', text: result }, { type: 'text', text: environmentDetails(turn) }] })
  }
  messages.push({ role: 'assistant', content: '<attempt_completion>\n<result>\nSessions now expire after SESSION_TTL_MS (default 30 min); the router answers 401 session_expired, translated (fr, ja, zh).\n</result>\n</attempt_completion>' })
  messages.push({ role: 'user', content: [{ type: 'text', text: '<feedback>\nMerci ! One more thing: the worker should skip expired sessions instead of failing — 请也加上测试。\n</feedback>' }, { type: 'text', text: environmentDetails(30) }] })
  return messages
}

function nativeTools (): unknown[] {
  return TOOLS.map(t => ({
    type: 'function',
    function: {
      name: t.name,
      description: t.description,
      strict: false,
      parameters: {
        type: 'object',
        properties: Object.fromEntries(t.params.map(p => [p.name, { type: p.type, description: p.description }])),
        required: t.params.filter(p => p.required).map(p => p.name),
        additionalProperties: false
      }
    }
  }))
}

let cached: { system: string, history: Message[], tools: unknown[] } | null = null

/** The agent-size request body (JSON text); `stream` adds `"stream":true` with usage, as Roo Code asks. */
export function agentBody (stream: boolean): string {
  cached ??= { system: systemPrompt(), history: history(), tools: nativeTools() }
  return JSON.stringify({
    model: 'qwen3-coder-plus',
    temperature: 0,
    messages: [{ role: 'system', content: cached.system }, ...cached.history],
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    tools: cached.tools,
    tool_choice: 'auto',
    parallel_tool_calls: false
  })
}

if (import.meta.main) {
  const body = agentBody(true)
  const parsed = JSON.parse(body) as { messages: Message[], tools: unknown[] }
  console.log(`agent body: ${Buffer.byteLength(body)} bytes (${body.length} chars); system prompt ${Buffer.byteLength(parsed.messages[0].content as string)} bytes; ${parsed.messages.length - 1} messages of history; ${parsed.tools.length} tools (${JSON.stringify(parsed.tools).length} bytes)`)
}

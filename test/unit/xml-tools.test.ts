import t from 'tap'
import { parseXmlToolCalls, XmlToolCallParser } from '../../src/adapters/xml-tools/parser.ts'
import type { OpenAIToolCall } from '../../src/adapters/xml-tools/protocol.ts'
import { toXmlToolRequest } from '../../src/adapters/xml-tools/request.ts'

const readFile = { type: 'function', function: { name: 'read_file', description: 'Read a file', strict: true, parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } } }
const listFiles = { type: 'function', function: { name: 'list_files', parameters: { type: 'object', properties: {} } } }

const systemText = (body: Record<string, any>): string => {
  const content = body.messages[0].content
  return typeof content === 'string' ? content : content.map((part: any) => part.text).join('')
}

t.test('toXmlToolRequest', async t => {
  t.test('returns the same object without tools or tool history', async t => {
    const body = { model: 'qwen', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello', tool_calls: [] }], stream: true }
    t.equal(toXmlToolRequest(body), body)
  })

  t.test('auto: tools into the existing system message, tool fields removed, key order kept', async t => {
    const body = {
      model: 'qwen',
      temperature: 0,
      messages: [{ role: 'system', content: 'You are Roo.' }, { role: 'user', content: 'read a.ts' }],
      tools: [readFile, listFiles, { type: 'custom', custom: { name: 'grammar' } }],
      tool_choice: 'auto',
      parallel_tool_calls: true,
      stream: true,
      stream_options: { include_usage: true }
    }
    const before = structuredClone(body)
    const out = toXmlToolRequest(body)
    t.same(body, before, 'input not mutated')
    t.same(Object.keys(out), ['model', 'temperature', 'messages', 'stream', 'stream_options'])
    t.equal(out.stream_options, body.stream_options)
    t.equal(out.messages.length, 2)
    t.equal(out.messages[1], body.messages[1], 'other messages kept as they are')
    const system: string = out.messages[0].content
    t.ok(system.startsWith('You are Roo.\n\n# Tools\n'))
    const listed = system.slice(system.indexOf('<tools>\n') + 8, system.indexOf('\n</tools>')).split('\n').map(line => JSON.parse(line))
    t.same(listed, [
      { type: 'function', function: { name: 'read_file', description: 'Read a file', parameters: readFile.function.parameters } },
      { type: 'function', function: { name: 'list_files', parameters: listFiles.function.parameters } }
    ], 'function tools only, without strict')
    t.match(system, '<tool_call>\n{"name": ')
    t.match(system, 'several calls')
    t.match(system, 'only when it helps')
    t.notMatch(system, 'grammar')
  })

  t.test('a new system message first when there is none', async t => {
    const out = toXmlToolRequest({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }], tools: [readFile] })
    t.equal(out.messages.length, 2)
    t.equal(out.messages[0].role, 'system')
    t.ok(out.messages[0].content.startsWith('# Tools\n'))
    t.same(out.messages[1], { role: 'user', content: 'hi' })
  })

  t.test('array content and developer messages', async t => {
    const cached = { type: 'text', text: 'You are Roo.', cache_control: { type: 'ephemeral' } }
    const out = toXmlToolRequest({ model: 'qwen', messages: [{ role: 'developer', content: [cached] }, { role: 'user', content: 'hi' }], tools: [readFile] })
    t.equal(out.messages.length, 2)
    t.equal(out.messages[0].role, 'developer')
    t.equal(out.messages[0].content[0], cached)
    t.equal(out.messages[0].content[1].type, 'text')
    t.ok(out.messages[0].content[1].text.startsWith('\n\n# Tools\n'))
  })

  t.test('tool_choice', async t => {
    const base = { model: 'qwen', messages: [{ role: 'user', content: 'hi' }], tools: [readFile, listFiles] }
    const none = toXmlToolRequest({ ...base, tool_choice: 'none' })
    t.same(none, { model: 'qwen', messages: [{ role: 'user', content: 'hi' }] }, 'none: tools dropped, nothing added')

    const required = systemText(toXmlToolRequest({ ...base, tool_choice: 'required' }))
    t.match(required, 'must contain at least one tool call')
    t.notMatch(required, 'only when it helps')

    const named = systemText(toXmlToolRequest({ ...base, tool_choice: { type: 'function', function: { name: 'list_files' } } }))
    t.match(named, 'must contain a call to the function "list_files"')

    const allowed = systemText(toXmlToolRequest({ ...base, tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'required', tools: [{ type: 'function', function: { name: 'read_file' } }] } } }))
    t.match(allowed, '"read_file"')
    t.notMatch(allowed, '"list_files"')
    t.match(allowed, 'must contain at least one tool call')

    const single = systemText(toXmlToolRequest({ ...base, parallel_tool_calls: false }))
    t.match(single, 'at most one call')
    t.notMatch(single, 'several calls')

    const emptyTools = toXmlToolRequest({ ...base, tools: [], tool_choice: 'auto' })
    t.same(emptyTools, { model: 'qwen', messages: [{ role: 'user', content: 'hi' }] }, 'empty tools: fields removed, no prompt')
  })

  t.test('history: tool_calls into blocks, tool results into one user turn', async t => {
    const body = {
      model: 'qwen',
      messages: [
        { role: 'user', content: 'read a and b' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.ts"}' } },
            { id: 'call_2', type: 'function', function: { name: 'read_file', arguments: '' } }
          ],
          name: 'roo'
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'A' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: 'B1' }, { type: 'text', text: 'B2' }] },
        { role: 'assistant', content: 'Now the list.', tool_calls: [{ id: 'call_3', type: 'function', function: { name: 'list_files', arguments: 'not json' } }] },
        { role: 'tool', tool_call_id: 'call_3', content: '(empty)' },
        { role: 'assistant', content: [{ type: 'text', text: 'More.' }], tool_calls: [{ id: 'call_4', type: 'function', function: { name: 'list_files', arguments: '{}' } }] },
        { role: 'user', content: 'thanks' }
      ],
      tools: [readFile],
      max_tokens: 100
    }
    const before = structuredClone(body)
    const out = toXmlToolRequest(body)
    t.same(body, before, 'input not mutated')
    t.same(Object.keys(out), ['model', 'messages', 'max_tokens'])
    const [system, ...rest] = out.messages
    t.equal(system.role, 'system')
    t.same(rest, [
      { role: 'user', content: 'read a and b' },
      {
        role: 'assistant',
        content: '<tool_call>\n{"name": "read_file", "arguments": {"path":"a.ts"}}\n</tool_call>\n<tool_call>\n{"name": "read_file", "arguments": {}}\n</tool_call>',
        name: 'roo'
      },
      { role: 'user', content: '<tool_response>\nA\n</tool_response>\n<tool_response>\nB1B2\n</tool_response>' },
      { role: 'assistant', content: 'Now the list.\n<tool_call>\n{"name": "list_files", "arguments": "not json"}\n</tool_call>' },
      { role: 'user', content: '<tool_response>\n(empty)\n</tool_response>' },
      { role: 'assistant', content: [{ type: 'text', text: 'More.' }, { type: 'text', text: '\n<tool_call>\n{"name": "list_files", "arguments": {}}\n</tool_call>' }] },
      { role: 'user', content: 'thanks' }
    ])
    t.same(Object.keys(rest[1]), ['role', 'content', 'name'], 'assistant key order kept')
  })

  t.test('history without tools: converted, no tool list', async t => {
    const out = toXmlToolRequest({
      model: 'qwen',
      messages: [
        { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c', content: 'ok' }
      ]
    })
    t.same(out.messages, [
      { role: 'assistant', content: '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>' },
      { role: 'user', content: '<tool_response>\nok\n</tool_response>' }
    ])
    const none = toXmlToolRequest({ model: 'qwen', tool_choice: 'none', tools: [readFile], messages: [{ role: 'tool', tool_call_id: 'c', content: 'ok' }] })
    t.equal(none.messages[0].role, 'system')
    t.match(none.messages[0].content, 'No tools are available')
    t.notMatch(none.messages[0].content, '<tools>')
  })

  t.test('a tool result with an image keeps its parts', async t => {
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }
    const out = toXmlToolRequest({ model: 'qwen', messages: [{ role: 'tool', content: 'first' }, { role: 'tool', content: [{ type: 'text', text: 'shot:' }, image] }] })
    t.same(out.messages, [{
      role: 'user',
      content: [
        { type: 'text', text: '<tool_response>\nfirst\n</tool_response>\n<tool_response>\nshot:' },
        image,
        { type: 'text', text: '\n</tool_response>' }
      ]
    }])
  })
})

// -----------------------------------------------------------------------------------------------------------------

const before = 'Let me read both files 🙂 — 先看看.\n\n'
const call1 = '<tool_call>\n{"name": "read_file", "arguments": {"path": "src/a.ts"}}\n</tool_call>'
const call2 = '<tool_call>\n{"name": "write_to_file", "arguments": {"path": "文档/b.md", "content": "a \\"</tool_call>\\" tag <tool_call> 🎉\\\\"}}\n</tool_call>'
const transcript = `${before}${call1}\n${call2}\n`
const expectedCalls = [
  { type: 'function', function: { name: 'read_file', arguments: '{"path":"src/a.ts"}' } },
  { type: 'function', function: { name: 'write_to_file', arguments: JSON.stringify({ path: '文档/b.md', content: 'a "</tool_call>" tag <tool_call> 🎉\\' }) } }
]

function feed (pieces: string[]): { content: string, calls: OpenAIToolCall[], parser: XmlToolCallParser } {
  const parser = new XmlToolCallParser()
  let content = ''
  const calls: OpenAIToolCall[] = []
  for (const piece of pieces) {
    const out = parser.push(piece)
    content += out.content
    calls.push(...out.calls)
  }
  const end = parser.flush()
  return { content: content + end.content, calls: [...calls, ...end.calls], parser }
}

const shape = (calls: OpenAIToolCall[]) => calls.map(call => ({ type: call.type, function: call.function }))

t.test('parser: two calls split at every position', async t => {
  let failures = 0
  for (let i = 0; i <= transcript.length; i++) {
    const { content, calls } = feed([transcript.slice(0, i), transcript.slice(i)])
    if (content !== before.trimEnd() || JSON.stringify(shape(calls)) !== JSON.stringify(expectedCalls)) {
      failures++
      t.fail(`split at ${i}`, { content, calls })
    }
  }
  t.equal(failures, 0, 'every two-way split')
  for (let i = 1; i < transcript.length; i += 3) {
    for (let j = i + 1; j < transcript.length; j += 2) {
      const { content, calls } = feed([transcript.slice(0, i), transcript.slice(i, j), transcript.slice(j)])
      if (content !== before.trimEnd() || JSON.stringify(shape(calls)) !== JSON.stringify(expectedCalls)) {
        failures++
        t.fail(`split at ${i} and ${j}`)
      }
    }
  }
  t.equal(failures, 0, 'three-way splits')
  const single = feed([...transcript])
  t.equal(single.content, before.trimEnd(), 'one character at a time')
  t.same(shape(single.calls), expectedCalls)
  t.equal(single.parser.callCount, 2)
})

t.test('parser: calls and ids', async t => {
  const parser = new XmlToolCallParser()
  const out = parser.push(transcript)
  t.equal(out.content, before.trimEnd(), 'text before the calls, no whitespace around the blocks')
  t.same(shape(out.calls), expectedCalls, 'several calls in one delta')
  t.equal(parser.callCount, 2)
  for (const call of out.calls) t.match(call.id, /^call_[0-9a-f]{24}$/)
  t.not(out.calls[0].id, out.calls[1].id)
  t.same(parser.flush(), { content: '', calls: [] }, 'trailing whitespace after the last call dropped')
})

t.test('parser: text streams at once, only a possible tag start waits', async t => {
  const parser = new XmlToolCallParser()
  t.same(parser.push('Hello <b'), { content: 'Hello <b', calls: [] })
  t.same(parser.push('>bold</b> and <'), { content: '>bold</b> and', calls: [] }, 'a lone < waits, with the space before it')
  t.same(parser.push('tool'), { content: '', calls: [] })
  t.same(parser.push('s> here'), { content: ' <tools> here', calls: [] }, 'not a tag after all: given back as it was')
  t.same(parser.push('\n<tool_'), { content: '', calls: [] })
  t.same(parser.push('call>\n{"name": "list_files", '), { content: '', calls: [] })
  const done = parser.push('"arguments": {}}\n</tool_call>\n\nDone.')
  t.equal(done.content, 'Done.', 'text after a call streams as content')
  t.same(shape(done.calls), [{ type: 'function', function: { name: 'list_files', arguments: '{}' } }])
  t.same(parser.flush(), { content: '', calls: [] })
})

t.test('parser: a split surrogate pair is never emitted half', async t => {
  const parser = new XmlToolCallParser()
  const emoji = '🎉'
  t.equal(parser.push('ok ' + emoji[0]).content, 'ok ')
  t.equal(parser.push(emoji[1] + '!').content, emoji + '!')
})

t.test('parser: blocks that are not calls come back verbatim', async t => {
  const cases = [
    'Before.\n<tool_call>\n{"name": "read_file", "arguments": {"path": }\n</tool_call>\nAfter.',
    'Before. <tool_call>{"arguments": {}}</tool_call> after',
    '<tool_call>\n{"name": "f", "arguments": 42}\n</tool_call>',
    '<tool_call>{"name": "f"}</b> <x</tool_call>',
    'Use the <tool_call> tag to call a tool, then </tool_call>.',
    'A <tool_callx>{"name": "f"}</tool_callx> is not a tag.',
    'Unfinished: <tool_call>\n{"name": "read_file", "arguments": {"path": "a',
    'Partial tag at the end <tool_ca'
  ]
  for (const text of cases) {
    for (let i = 0; i <= text.length; i++) {
      const { content, calls } = feed([text.slice(0, i), text.slice(i)])
      if (content !== text || calls.length > 0) t.fail(`${JSON.stringify(text)} split at ${i}`, { content })
    }
    t.same(parseXmlToolCalls(text), { content: text, calls: [] }, text)
  }
  const parser = new XmlToolCallParser()
  t.equal(parser.push('Use the <tool_call> tag').content, 'Use the <tool_call> tag', 'a tag in prose does not hold the stream')
})

t.test('parser: an invalid block between calls', async t => {
  const text = `${call1}\n<tool_call>\n{oops}\n</tool_call>\n${call1}`
  const { content, calls } = feed([...text])
  t.equal(content, '<tool_call>\n{oops}\n</tool_call>')
  t.equal(calls.length, 2)
})

t.test('parser: arguments forms', async t => {
  const args = (json: string) => parseXmlToolCalls(`<tool_call>${json}</tool_call>`).calls[0]?.function.arguments
  t.equal(args('{"name": "f", "arguments": "{\\"a\\": 1}"}'), '{"a": 1}', 'a JSON string passes through')
  t.equal(args('{"name": "f", "arguments": "plain"}'), '"plain"', 'other strings are stringified')
  t.equal(args('{"name": "f"}'), '{}', 'no arguments')
  t.equal(args('{"name": "f", "parameters": {"x": "✓"}}'), '{"x":"✓"}', 'parameters as an alias')
  t.equal(args('{"name": "f", "arguments": {"q": "中文 😀", "n": [1, 2]}}'), '{"q":"中文 😀","n":[1,2]}')
})

t.test('parser: Roo Code XML passes byte for byte', async t => {
  const roo = 'Checking the folder first.\n<list_files>\n<path>src</path>\n<recursive>false</recursive>\n</list_files>\n' +
    '<write_to_file>\n<path>a.ts</path>\n<content>\nconst tool = "<tool" + "_call>" // 完成 ✓ 🙂\n</content>\n</write_to_file>\n\n'
  for (let i = 0; i <= roo.length; i++) {
    const { content, calls } = feed([roo.slice(0, i), roo.slice(i)])
    if (content !== roo || calls.length > 0) t.fail(`split at ${i}`, { content })
  }
  t.equal(feed([...roo]).content, roo, 'one character at a time')
  t.same(parseXmlToolCalls(roo), { content: roo, calls: [] })
})

t.test('parseXmlToolCalls', async t => {
  const both = parseXmlToolCalls(transcript)
  t.equal(both.content, before.trimEnd())
  t.same(shape(both.calls), expectedCalls)
  const only = parseXmlToolCalls(`\n${call1}\n`)
  t.equal(only.content, null, 'nothing but calls: null content')
  t.equal(only.calls.length, 1)
  t.same(parseXmlToolCalls(''), { content: '', calls: [] })
  t.same(parseXmlToolCalls('plain answer\n'), { content: 'plain answer\n', calls: [] })
})

import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { spawnGateway } from '../process-helper.ts'
import { startSimulator } from '../simulator/index.ts'
import { postJson, readEvents, user } from '../helper.ts'

// `npm start` and the image run the gateway compiled by `npm run build`, not the sources: the build must give a
// gateway that starts and answers, with no import of a .ts file left (type stripping is off here to prove it).

const run = promisify(execFile)

t.test('npm run build compiles a gateway that starts and answers without type stripping', async t => {
  await run('npm', ['run', 'build', '--silent'], { timeout: 120_000 })
  const sim = await startSimulator()
  t.after(() => sim.close())
  const gateway = await spawnGateway(t, { DASHSCOPE_BASE_URL: sim.url, DASHSCOPE_API_KEY: 'sk-build-test' }, {
    entry: 'dist/src/server.js',
    nodeArgs: ['--no-experimental-strip-types']
  })
  const health = await fetch(`${gateway.origin}/health/ready`)
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'ready' })

  const answer = await postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', messages: user('hello') })
  t.equal(answer.status, 200)
  t.match(await answer.json(), { object: 'chat.completion', choices: [{ message: { role: 'assistant', content: /\S/ } }] })

  const stream = await postJson(`${gateway.baseURL}/chat/completions`, { model: 'qwen-plus', stream: true, messages: user('hello') })
  const events = await readEvents(stream)
  t.equal(events.at(-1)?.data, '[DONE]')
  t.notMatch(gateway.output(), /ERR_|strip-types|\.ts\b/, 'nothing in its output names a TypeScript file')
})

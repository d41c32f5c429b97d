import t from 'tap'
import { probeCli, requireCli, type Cli, type CliTest } from './helpers/cli.ts'

// The helper the CLI tests stand on: a CLI that cannot run skips the test on a laptop and fails it under CI=true,
// and the first of its launchers that runs is the one used.

const MISSING: Cli = { name: 'nothing', pkg: '@example/nothing', files: ['/nonexistent/nothing'] }
// A launcher that runs: this Node, given a script that prints a version.
const NODE_SCRIPT = new URL('./helpers/fake-version.cjs', import.meta.url).pathname

function recorder (): CliTest & { calls: string[] } {
  const calls: string[] = []
  return { calls, plan: (n, comment) => { calls.push(`plan ${n}: ${comment}`) }, fail: message => { calls.push(`fail: ${message}`) }, after: () => {} }
}

function withCI<T> (value: string | undefined, fn: () => T): T {
  const saved = process.env.CI
  if (value === undefined) delete process.env.CI
  else process.env.CI = value
  try {
    return fn()
  } finally {
    if (saved === undefined) delete process.env.CI
    else process.env.CI = saved
  }
}

t.test('a CLI that cannot run skips on a laptop and fails under CI=true', async t => {
  const laptop = recorder()
  t.equal(withCI(undefined, () => requireCli(laptop, MISSING)), undefined)
  t.match(laptop.calls, [/^plan 0: nothing \(npm @example\/nothing, installed by npm ci\) cannot run: \/nonexistent\/nothing is missing: skipping; CI=true makes this a failure$/])
  const ci = recorder()
  t.equal(withCI('true', () => requireCli(ci, MISSING)), undefined)
  t.match(ci.calls, [/^fail: .*\/nonexistent\/nothing is missing: client tests need it under CI=true$/])
})

t.test('the first launcher that answers --version is used', async t => {
  const probe = probeCli({ ...MISSING, files: ['/nonexistent/nothing', NODE_SCRIPT] })
  t.match(probe, { file: NODE_SCRIPT, version: 'fake 1.2.3' })
})

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

// `npm start` and `npm test` first run scripts/check-node.cjs on the shell's own Node: an old one gets one line that
// says what is wrong and how to fix it for good, instead of ERR_UNKNOWN_FILE_EXTENSION ".ts".

const run = (node: string) => spawnSync(node, ['scripts/check-node.cjs'], { encoding: 'utf8' })

t.test('on this Node (the gateway\'s own), the check passes silently', async t => {
  const result = run(process.execPath)
  t.equal(result.status, 0)
  t.equal(result.stdout + result.stderr, '')
})

// Debian 12's own Node (20.x) is on the machines this runs on; elsewhere there may be none to try.
const old = ['/usr/bin/node', '/bin/node'].find(path => existsSync(path) && Number(spawnSync(path, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout) < 22)
const skip = old === undefined && process.env.CI !== 'true' ? 'no Node older than 22 at /usr/bin/node' : false

t.test('on an older Node, one line names the version and the lasting fix', { skip }, async t => {
  if (old === undefined) return t.fail('no Node older than 22 at /usr/bin/node to check against')
  const result = run(old)
  t.equal(result.status, 1)
  t.equal(result.stdout, '')
  const lines = result.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line')
  t.match(lines[0], /^Qwen Gateway needs Node\.js 22\.19 or later \(24 LTS\); this shell runs Node v\d+\.\d+\.\d+ \(/)
  t.match(lines[0], /npm install --prefix ~\/\.node24 node@24 && echo 'export PATH="\$HOME\/\.node24\/node_modules\/\.bin:\$PATH"' >> ~\/\.profile/)
})

import t from 'tap'
import { accessSync, constants } from 'node:fs'
import { copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { startStack } from '../helper.ts'
import { inCI, tempDir, type BinaryTest } from './servers.ts'

// /docs as a person sees it: Debian's Chromium, headless, drives the Swagger UI page of a gateway in front of the
// simulator. No browser is downloaded: playwright-core only drives the one installed (apt-get install chromium;
// .ci/run does it; CHROMIUM_BIN names another). DOCS_SCREENSHOT=/some/file.png keeps the screenshot after the test.

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

/** Chromium's path; without it the test skips on a laptop and fails under CI=true (as requireBinary does). */
function requireChromium (t: BinaryTest): string | undefined {
  try {
    accessSync(CHROMIUM, constants.X_OK)
    return CHROMIUM
  } catch {
    const message = `chromium is not installed at ${CHROMIUM} (apt-get install chromium; .ci/run does it)`
    if (inCI()) t.fail(`${message}: integration tests need it under CI=true`)
    else t.plan(0, `${message}: skipping; CI=true makes this a failure`)
    return undefined
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

/** Width and height from a PNG's IHDR chunk. */
const pngSize = (png: Buffer) => ({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) })

t.test('/docs in headless Chromium: groups, summaries, {model}, a working example, locks only on /v1', async t => {
  const executablePath = requireChromium(t)
  if (executablePath === undefined) return
  const { origin } = await startStack(t, { env: { GATEWAY_API_KEYS: 'docs-key' } })
  const doc = await (await fetch(`${origin}/openapi.json`)).json() as { tags: Array<{ name: string }>, paths: Record<string, Record<string, { summary: string }>> }
  const dir = await tempDir(t, 'docs-page')
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath, args: FLAGS, viewport: { width: 1280, height: 900 }
  })
  t.after(() => context.close())
  const page = context.pages()[0] ?? await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', error => pageErrors.push(error.message))

  await page.goto(`${origin}/docs`)
  await page.locator('.opblock').first().waitFor({ timeout: 30_000 })

  // Groups, in the document's order, and nothing left in "default".
  const groups = await page.locator('.opblock-tag').evaluateAll(els => els.map(el => el.getAttribute('data-tag')))
  t.same(groups, doc.tags.map(tag => tag.name), 'one group per tag, in order')
  t.ok(groups.includes('Chat Completions') && groups.includes('Anthropic Messages') && groups.includes('Health'))
  t.equal(await page.locator('#operations-tag-default').count(), 0, 'no "default" group')
  for (const group of groups) t.ok(await page.locator(`.opblock-tag[data-tag="${group}"]`).isVisible(), `${group} visible`)

  // Every operation shown with its path and summary; the model route reads {model}.
  const shown = await page.locator('.opblock-summary').evaluateAll(els => els.map(el => ({
    path: el.querySelector('.opblock-summary-path')?.getAttribute('data-path'),
    summary: el.querySelector('.opblock-summary-description')?.textContent
  })))
  const documented = Object.entries(doc.paths)
    .flatMap(([path, item]) => Object.values(item).map(operation => ({ path, summary: operation.summary })))
  t.same(shown.map(s => `${s.path} ${s.summary}`).sort(), documented.map(d => `${d.path} ${d.summary}`).sort(), 'every operation, with its summary')
  t.ok(shown.some(s => s.path === '/v1/models/{model}'), '/v1/models/{model}')
  t.notOk(shown.some(s => s.path?.includes('*')), 'no wildcard')

  // A lock on each /v1 operation, none on /health or /metrics.
  for (const { path } of shown) {
    const locks = await page.locator(`.opblock:has(.opblock-summary-path[data-path="${path}"]) .authorization__btn`).count()
    if (path!.startsWith('/v1/')) t.ok(locks > 0, `${path}: a lock`)
    else t.equal(locks, 0, `${path}: no lock`)
  }

  // The document is linked from the header, and the link works.
  const link = page.locator('.info a[href="/openapi.json"]')
  t.ok(await link.isVisible(), '/openapi.json linked')
  t.equal((await page.request.get(`${origin}/openapi.json`)).status(), 200)

  // A client key through Authorize, then the chat example sent as it is: it answers 200.
  await page.locator('.auth-wrapper .authorize').click()
  const bearer = page.locator('.modal-ux .auth-container').filter({ hasText: 'bearer' })
  await bearer.locator('input').fill('docs-key')
  await bearer.locator('button.authorize').click()
  await page.locator('.modal-ux .btn-done').first().click()

  const chat = page.locator('.opblock:has(.opblock-summary-path[data-path="/v1/chat/completions"])')
  await chat.locator('.opblock-summary').click()
  const example = chat.locator('.body-param__example').first()
  await example.waitFor()
  const body = JSON.parse(await example.innerText())
  t.equal(body.model, 'qwen-plus', 'the chat example names a real model')
  t.match(body.messages, [{ role: 'system' }, { role: 'user', content: /\w+/ }], 'and real messages')
  t.notMatch(await chat.innerText(), /additionalProp/, 'nothing generated in the example')
  const statuses = await chat.locator('.responses-table:not(.live-responses-table) .response-col_status:not(.col_header)').allInnerTexts()
  t.same(statuses.map(s => s.trim().split(/\s/)[0]), ['200', '400', '401', '404', '413', '429', '500', '502', '503', '504'], 'the error statuses listed')
  t.match(await chat.innerText(), /"param"/, 'in the OpenAI envelope')

  await chat.locator('.try-out__btn').click()
  await chat.locator('.execute').click()
  const status = chat.locator('.live-responses-table .response-col_status:not(.col_header)')
  await status.waitFor({ timeout: 30_000 })
  t.equal((await status.innerText()).trim(), '200', 'Try it out with the example: 200')
  t.match(await chat.locator('.live-responses-table .response-col_description:not(.col_header)').innerText(), /chat\.completion/)

  const screenshot = join(dir, 'docs-page.png')
  await page.screenshot({ path: screenshot, fullPage: true })
  const png = await readFile(screenshot)
  t.same([...png.subarray(0, 8)], PNG_SIGNATURE, 'a PNG')
  const { width, height } = pngSize(png)
  t.ok(png.length > 50_000, `a screenshot with something in it (${png.length} bytes)`)
  t.equal(width, 1280)
  t.ok(height > 2000, `the whole page (${height} px high)`)
  if (process.env.DOCS_SCREENSHOT) await copyFile(screenshot, process.env.DOCS_SCREENSHOT)

  // Every other operation opened: nothing made up by Swagger UI, and each request body starts from a real model.
  const closed = page.locator('.opblock:not(.is-open) .opblock-summary')
  while (await closed.count() > 0) await closed.first().click()
  // Shown as text, or in the editable box where Try it out is on (chat, above).
  const examples = [
    ...await page.locator('.body-param__example').allInnerTexts(),
    ...await page.locator('textarea.body-param__text').evaluateAll(els => els.map(el => (el as unknown as { value: string }).value))
  ]
  t.equal(examples.length, 7, 'a body example for each of the 7 operations with a body')
  for (const text of examples) t.match(JSON.parse(text).model, /^(qwen-plus|qwen3-coder-plus|text-embedding-v4)$/, 'a real model id')
  t.notMatch(await page.locator('body').innerText(), /additionalProp/, 'no additionalProp anywhere on the page')
  t.same(pageErrors, [], 'no script errors on the page')
})

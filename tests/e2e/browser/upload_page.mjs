// Drives the upload page (web/) in headless Debian Chromium through playwright-core, as a person
// would: open it, pick files in Uppy's Dashboard, press Upload, wait until every file's card has
// ended (ready, failed, refused, duplicate) and every ready track's player has loaded, take a
// screenshot. Prints what the page showed as one JSON object; tests/e2e/test_web_page.py judges it.
//
//   node tests/e2e/browser/upload_page.mjs '{"url": …, "files": […], "screenshot": …}'
//
// Optional: "album", "visibility", "timeoutMs" (the longest wait for the page to settle),
// "clockAheadMs" (the page's clock runs that far ahead of the servers': presigned URLs look about to
// expire to it).

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
const TERMINAL = ['ready', 'failed', 'refused', 'duplicate']

const spec = JSON.parse(process.argv[2])
const timeout = spec.timeoutMs ?? 180_000
const report = { console: [], pageErrors: [], failedRequests: [], requests: [], timedOut: null, cards: [] }

const profile = await mkdtemp(join(tmpdir(), 'tracklane-chromium-'))
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ARGS,
  viewport: { width: 1100, height: 900 },
})
try {
  const page = context.pages()[0] ?? (await context.newPage())
  page.on('console', (message) => {
    if (['error', 'warning'].includes(message.type())) report.console.push(`${message.type()}: ${message.text()}`)
  })
  page.on('pageerror', (error) => report.pageErrors.push(String(error)))
  // Every request the page made, without the signatures: which service, which S3 operation.
  page.on('request', (request) => {
    const url = new URL(request.url())
    if (!url.protocol.startsWith('http')) return
    report.requests.push({
      method: request.method(),
      host: url.host,
      path: url.pathname,
      query: [...url.searchParams.keys()].filter((key) => !key.startsWith('X-Amz-')).sort(),
      partNumber: url.searchParams.has('partNumber') ? Number(url.searchParams.get('partNumber')) : null,
    })
  })
  page.on('requestfailed', (request) => {
    // The player's stream lookup stops reading once it knows the URL: not a failure.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') {
      report.failedRequests.push(`${request.method()} ${request.url().split('?')[0]}: ${request.failure()?.errorText}`)
    }
  })

  await run(page).catch((error) => {
    report.timedOut = String(error.message ?? error).split('\n')[0]
  })
  report.connection = await page.locator('#connection-status').textContent().catch(() => null)
  report.ready = await page.evaluate(() => document.body.dataset.ready ?? null).catch(() => null)
  report.cards = await page.evaluate(readCards).catch(() => [])
  if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: true })
} finally {
  await context.close()
  await rm(profile, { recursive: true, force: true })
}
process.stdout.write(`${JSON.stringify(report)}\n`)

async function run(page) {
  if (spec.clockAheadMs) await page.clock.setFixedTime(new Date(Date.now() + spec.clockAheadMs))
  await page.goto(spec.url)
  await page.waitForFunction(() => Boolean(document.body.dataset.ready), null, { timeout: 30_000 })
  if ((await page.evaluate(() => document.body.dataset.ready)) !== 'true') return
  if (spec.album) await page.fill('#album', spec.album)
  if (spec.visibility) await page.selectOption('#visibility', spec.visibility)
  await page.locator('input.uppy-Dashboard-input:not([webkitdirectory])').first().setInputFiles(spec.files)
  await page.locator('.uppy-StatusBar-actionBtn--upload').click()
  await page.waitForFunction(
    ([count, terminal]) => {
      const cards = [...document.querySelectorAll('#uploads .upload')]
      return cards.length === count && cards.every((card) => terminal.includes(card.dataset.state))
    },
    [spec.files.length, TERMINAL],
    { timeout, polling: 250 },
  )
  // A ready track gets its waveform and player right after the ready event: wait for the player
  // to have loaded the stream's metadata (or for the card to say why not).
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('#uploads .upload[data-state="ready"]')].every((card) => {
        const audio = card.querySelector('audio')
        return (audio.src && (audio.readyState >= 1 || audio.error)) || card.dataset.errorCode
      }),
    null,
    { timeout: 60_000, polling: 250 },
  )
}

function readCards() {
  return [...document.querySelectorAll('#uploads .upload')].map((card) => {
    const audio = card.querySelector('audio')
    const canvas = card.querySelector('canvas.waveform')
    return {
      ...card.dataset,
      status: card.querySelector('.status')?.textContent ?? '',
      errorText: card.querySelector('.error')?.hidden ? '' : (card.querySelector('.error')?.textContent ?? ''),
      lanes: Object.fromEntries([...card.querySelectorAll('.lanes li')].map((li) => [li.dataset.lane, li.dataset.state])),
      waveform: canvas.hidden ? null : { peaks: Number(canvas.dataset.peaks), source: canvas.dataset.source },
      audio: audio.src
        ? {
            format: audio.dataset.format,
            readyState: audio.readyState,
            duration: Number.isFinite(audio.duration) ? audio.duration : null,
            error: audio.error ? audio.error.code : null,
            host: new URL(audio.src).host,
          }
        : null,
    }
  })
}

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { execa } from 'execa'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunJson } from '../../src/model/types.js'
import { chartPoint } from '../../src/report/heap-chart.js'
import { program, ROOT } from '../support/debugee.js'

// The HTML report's live-heap chart, as a person sees it: `heapspec run --out` on debugee/peaks.c
// and on its churn (preload, gdb), the two saved runs merged by `heapspec report`, and the page
// opened in headless Chromium (Debian's; CI installs it), screenshotted, and its SVG read back:
// the series and the test cases' spans drawn are the runs' own.

const CHROMIUM = '/usr/bin/chromium'
const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

let work: string
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'heapspec-chart-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** What the page draws for each chart, read in the browser. */
interface DrawnChart {
  run: number
  command: string
  lastEvent: number
  maxBytes: number
  data: string
  points: string
  spans: { test: string; x: number; width: number }[]
  box: { width: number; height: number }
}

describe('the HTML report charts live heap per run', () => {
  it('draws each run\'s series and its test cases\' spans, as the saved runs hold them, in headless Chromium', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does, to check the HTML report in a browser.`)
    const runs: { dir: string; backend: string; args: string[] }[] = [
      { dir: join(work, 'peaks'), backend: 'preload', args: [program('peaks')] },
      { dir: join(work, 'churn'), backend: 'gdb', args: [program('peaks'), 'churn'] },
    ]
    for (const r of runs) {
      const result = await execa('node', [CLI, 'run', '--backend', r.backend, '--out', r.dir, '--', ...r.args], { cwd: ROOT, reject: false })
      expect({ exitCode: result.exitCode, stdout: result.stdout }).toEqual({ exitCode: 0, stdout: r.args.length === 1 ? 'peaks: done' : '' })
    }
    const merged = join(work, 'merged')
    const report = await execa('node', [CLI, 'report', '--out', merged, runs[0]!.dir, runs[1]!.dir], { cwd: ROOT, reject: false })
    expect(report.exitCode).toBe(0)
    const saved = runs.map((r) => JSON.parse(readFileSync(join(r.dir, 'heapspec.json'), 'utf8')) as RunJson)

    const context = await chromium.launchPersistentContext(mkdtempSync(join(work, 'profile-')), { executablePath: CHROMIUM, args: ARGS, headless: true })
    try {
      const page = context.pages()[0] ?? (await context.newPage())
      await page.goto(pathToFileURL(join(merged, 'index.html')).href)
      const shot = await page.locator('section.heap-charts').screenshot({ path: join(work, 'chart.png') })
      expect(shot.subarray(1, 4).toString()).toBe('PNG')
      const drawn = await page.$$eval('svg.heap-chart', (svgs) =>
        svgs.map((svg) => {
          const line = svg.querySelector('polyline.series')!
          const box = svg.getBoundingClientRect()
          return {
            run: Number(svg.getAttribute('data-run')),
            command: svg.closest('figure')!.querySelector('figcaption code')!.textContent!,
            lastEvent: Number(svg.getAttribute('data-last-event')),
            maxBytes: Number(svg.getAttribute('data-max-bytes')),
            data: line.getAttribute('data-points')!,
            points: line.getAttribute('points')!,
            spans: [...svg.querySelectorAll('rect.span')].map((r) => ({ test: r.getAttribute('data-test')!, x: Number(r.getAttribute('x')), width: Number(r.getAttribute('width')) })),
            box: { width: box.width, height: box.height },
          }
        }),
      )
      expect(drawn).toHaveLength(2)
      // the merge lists the runs in an order of its own (and their paths relative to the project):
      // each chart is matched to its run by its command's argument
      expect(drawn.map((c) => c.command).sort()).toEqual(['debugee/build/peaks', 'debugee/build/peaks churn'])
      drawn.forEach((chart: DrawnChart, i) => {
        const run = saved.find((r) => r.program.command.length > 1 === chart.command.endsWith(' churn'))!
        const series = run.heapSeries!
        const lastEvent = Math.max(series.points.at(-1)![0], ...series.spans.map((s) => s.to))
        const maxBytes = Math.max(...series.points.map(([, bytes]) => bytes))
        expect({ run: chart.run, lastEvent: chart.lastEvent, maxBytes: chart.maxBytes, box: chart.box }).toEqual({ run: i, lastEvent, maxBytes, box: { width: 720, height: 160 } })
        expect(run.backend).toBe(chart.command.endsWith('churn') ? 'gdb' : 'preload')
        // the run's peak is the top of its chart
        expect(maxBytes).toBe(run.peak!.bytes)
        expect(chart.data).toBe(series.points.map((p) => p.join(':')).join(' '))
        expect(chart.points).toBe(series.points.map(([x, bytes]) => chartPoint(x, bytes, lastEvent, maxBytes).join(',')).join(' '))
        expect(chart.spans).toEqual(
          series.spans.map((s) => {
            const [x0] = chartPoint(s.from, 0, lastEvent, maxBytes)
            const [x1] = chartPoint(s.to, 0, lastEvent, maxBytes)
            return { test: run.tests[s.test]!.name, x: x0, width: Math.round(Math.max(x1 - x0, 1) * 100) / 100 }
          }),
        )
      })
      // by construction: 24 events in three test cases on the first; 479 points of churn on the second
      expect(drawn.map((c) => [c.spans.map((s) => s.test), c.data.split(' ').length]).sort((a, b) => Number(a[1]) - Number(b[1]))).toEqual([
        [['four_blocks', 'with_fixture', 'grows'], 24],
        [['churn', 'wide', 'after_churn'], 479],
      ])
    } finally {
      await context.close()
    }
  })
})

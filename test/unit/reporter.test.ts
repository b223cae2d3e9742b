import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { normalizeReporterOptions } from '../../reporter/options.js'
import { CaptureProgress } from '../../reporter/progress.js'
import { removeCaptureStart, writeCaptureStart } from '../../src/report/results-dir.js'

describe("the reporters' options", () => {
  it('default to heapspec-report/, the failing kinds, annotations on GitHub Actions and progress on a terminal', () => {
    expect(normalizeReporterOptions(undefined, {}, true)).toEqual({ outputDir: 'heapspec-report', kinds: ['definite', 'indirect', 'possible'], watermarks: [1, 1024], annotations: false, progress: true })
    expect(normalizeReporterOptions({}, { GITHUB_ACTIONS: 'true', CI: 'true' }, true)).toMatchObject({ annotations: true, progress: false })
    expect(normalizeReporterOptions({ outputDir: 'reports/heap', kinds: ['definite'], progress: false }, {}, true)).toMatchObject({ outputDir: 'reports/heap', kinds: ['definite'], progress: false })
  })

  it.each([
    [{ outDir: 'x' }, "Unknown option `outDir` of heapspec's reporter. Known options: outputDir, kinds, watermarks, annotations, progress."],
    [{ outputDir: '' }, "Expected the `outputDir` option of heapspec's reporter to be a directory path, got `` (string)."],
    [{ kinds: ['lost'] }, 'Expected the `kinds` option of heapspec\'s reporter to be a non-empty array of "definite", "indirect", "possible", "reachable", got `["lost"]` (array).'],
    [{ watermarks: [10, 1] }, "Expected the `watermarks` option of heapspec's reporter to be two byte counts [low, high] with low <= high, got `[10,1]` (array)."],
    [{ annotations: 'yes' }, "Expected the `annotations` option of heapspec's reporter to be true or false, got `yes` (string)."],
    ['heapspec-report', "Expected the options of heapspec's reporter to be an object, got `heapspec-report` (string)."],
  ])('refuse %j before anything runs', (options, message) => {
    expect(() => normalizeReporterOptions(options, {}, false)).toThrow(message)
  })
})

describe('capture progress', () => {
  it('names a capture once it has run 2 s, again every 10 s, and when it finishes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-progress-'))
    let now = 1_000_000
    const lines: string[] = []
    const progress = new CaptureProgress(dir, '/proj', (line) => lines.push(line), { now: () => now })
    writeCaptureStart(dir, { capture: 'c1', command: ['/proj/build/tests', '--all'], backend: 'gdb', startedAt: now, test: 'parser > parses' })
    writeCaptureStart(dir, { capture: 'c2', command: ['/usr/bin/true'], backend: null, startedAt: now, test: null })
    progress.poll()
    now += 1000
    removeCaptureStart(dir, 'c2') // a short capture: never mentioned
    progress.poll()
    now += 1500
    progress.poll()
    now += 5000
    progress.poll()
    now += 5000
    progress.poll()
    now += 3000
    removeCaptureStart(dir, 'c1')
    progress.stop()
    expect(lines).toEqual([
      'heapspec: capturing build/tests --all under gdb (parser > parses): 3 s so far',
      'heapspec: still capturing build/tests --all under gdb (parser > parses): 13 s so far',
      'heapspec: build/tests --all under gdb (parser > parses) finished after 16 s',
    ])
  })
})

/**
 * The Vitest side of the reporter channel, set up by heapspec/vitest: files each run a test made
 * or checked in that test's `task.meta` (a run made outside any test, in the test file's meta),
 * where heapspec/reporter/vitest reads it — and, through Vitest's own `--merge-reports`, so can a
 * merge of blob reports. The run itself rides with its first claim in the file; later claims name
 * it by id, so a run checked by a hundred tests travels once.
 */
import { afterAll, TestRunner, type RunnerTask, type RunnerTestCase } from 'vitest'
import type { RunJson } from '../src/model/types.js'
import { removeCaptureStart, RESULTS_DIR_ENV, writeCaptureStart } from '../src/report/results-dir.js'
import type { RunRef } from '../src/report/saved-runs.js'
import { observeRuns, type CheckVerdict } from '../src/run-events.js'
import type { HeapspecTaskMeta } from './task-meta.js'

/** The test running now, hooks included: none in beforeAll/afterAll hooks or while the file is collected. */
const getCurrentTest = (): RunnerTestCase | undefined => TestRunner.getCurrentTest()

/** Runs whose JSON this file has already filed. */
const sent = new Set<string>()
/** Runs made outside any test, not yet claimed by one. */
const unclaimed = new Map<string, RunJson>()

function file(task: Readonly<RunnerTask>, id: string, leaks: number[] | null, run: RunJson, verdict?: CheckVerdict): void {
  const meta: HeapspecTaskMeta = (task.meta.heapspec ??= { runs: [] })
  const ref: RunRef = { id, leaks, ...(verdict ? { verdict } : {}) }
  if (!sent.has(id)) {
    ref.run = run
    sent.add(id)
  }
  meta.runs.push(ref)
  unclaimed.delete(id)
}

/** The test a matcher ran in: the matcher's own state (right for concurrent tests too), else the running test. */
function testOf(context: unknown): Readonly<RunnerTestCase> | undefined {
  const task = (context as { task?: Readonly<RunnerTestCase> } | undefined)?.task
  return task && task.type === 'test' ? task : getCurrentTest()
}

// Vitest reads a hook's first parameter as fixtures, which must be destructured.
afterAll(({}, suite) => {
  for (const [id, run] of unclaimed) file(suite, id, null, run)
})

observeRuns({
  captureStarted(start) {
    const dir = process.env[RESULTS_DIR_ENV]
    if (dir) writeCaptureStart(dir, { ...start, test: getCurrentTest()?.fullTestName ?? null })
  },
  captureEnded(capture) {
    const dir = process.env[RESULTS_DIR_ENV]
    if (dir) removeCaptureStart(dir, capture)
  },
  runMade(id, run) {
    const test = getCurrentTest()
    if (test) file(test, id, null, run)
    else unclaimed.set(id, run)
  },
  runChecked(id, run, leaks, context, verdict) {
    const test = testOf(context)
    if (test) file(test, id, leaks, run, verdict)
    else if (!sent.has(id)) unclaimed.set(id, run)
  },
})

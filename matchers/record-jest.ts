/**
 * The Jest side of the reporter channel, set up by heapspec/jest: Jest has no way to attach data
 * to a test for its reporters, so when heapspec/reporter/jest has named a results directory
 * (HEAPSPEC_RESULTS_DIR, inherited by every worker), each run a test made or checked is filed
 * there as a file of its own. The run itself rides with its first claim in the worker; later
 * claims name it by id. Without the variable (no heapspec reporter), nothing is written.
 */
import { CaptureFailedError } from '../src/errors.js'
import type { RunJson } from '../src/model/types.js'
import { removeCaptureStart, RESULTS_DIR_ENV, writeCaptureStart, writeRunRef } from '../src/report/results-dir.js'
import { observeRuns, type CheckVerdict } from '../src/run-events.js'

/** The part of Jest's expect state (a matcher's `this`, or `expect.getState()`) that names the test. */
interface JestTestState {
  testPath?: string
  currentTestName?: string
}

/** What the recorder needs of Jest's globals. */
export interface JestHooks {
  beforeEach(fn: () => void): void
  afterEach(fn: () => void): void
  expect: { getState(): JestTestState }
}

/** Runs whose JSON this worker has already filed. */
const sent = new Set<string>()

/**
 * Starts filing runs for heapspec's Jest reporter. A test is running between its beforeEach and
 * afterEach hooks; outside them (beforeAll, collection) a run belongs to the test file only,
 * because Jest keeps the last test's name in its state after that test ends.
 * @example recordRunsForJest(globalThis as JestHooks)
 */
export function recordRunsForJest(jest: JestHooks): void {
  let inTest = false
  jest.beforeEach(() => {
    inTest = true
  })
  jest.afterEach(() => {
    inTest = false
  })
  const fileRef = (id: string, run: RunJson, leaks: number[] | null, state: JestTestState, verdict?: CheckVerdict): void => {
    const dir = process.env[RESULTS_DIR_ENV]
    if (!dir) return
    try {
      writeRunRef(dir, { id, file: state.testPath ?? null, name: inTest ? (state.currentTestName ?? null) : null, leaks, ...(verdict ? { verdict } : {}), ...(sent.has(id) ? {} : { run }) })
    } catch (error) {
      throw new CaptureFailedError(`heapspec: cannot hand the run of ${run.program.command.join(' ')} to heapspec's Jest reporter (${RESULTS_DIR_ENV}=${dir}): ${(error as Error).message}.`, { cause: error })
    }
    sent.add(id)
  }
  observeRuns({
    captureStarted(start) {
      const dir = process.env[RESULTS_DIR_ENV]
      if (dir) writeCaptureStart(dir, { ...start, test: inTest ? (jest.expect.getState().currentTestName ?? null) : null })
    },
    captureEnded(capture) {
      const dir = process.env[RESULTS_DIR_ENV]
      if (dir) removeCaptureStart(dir, capture)
    },
    runMade(id, run) {
      fileRef(id, run, null, jest.expect.getState())
    },
    runChecked(id, run, leaks, context, verdict) {
      const state = (context ?? {}) as JestTestState
      fileRef(id, run, leaks, state.testPath ? state : jest.expect.getState(), verdict)
    },
  })
}

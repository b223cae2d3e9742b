import type { LeakRecord, MemoryError, RunJson, TestCaseSummary } from './types.js'

/**
 * A test case's own loss records: those the run carries for it (`tests[].leaks`, what it answers
 * for), or, in a run saved before they were carried, the exit's records of its blocks.
 */
export function testCaseRecords(run: Pick<RunJson, 'leaks'>, test: Pick<TestCaseSummary, 'name' | 'leaks'>): LeakRecord[] {
  return test.leaks ?? run.leaks.filter((r) => r.test === test.name)
}

/**
 * A test case's memory errors: those the run carries for it (`tests[].errors`, repeats of earlier
 * test cases' errors included), or the run's errors whose `test` names it (a backend that keeps no
 * per-test list, or a run saved before one was kept).
 */
export function testCaseErrors(run: Pick<RunJson, 'errors'>, test: Pick<TestCaseSummary, 'name' | 'errors'>): MemoryError[] {
  return test.errors ?? (run.errors ?? []).filter((e) => e.test === test.name)
}

/**
 * Every loss record a report lists for a run, each once: each test case's own records, in the
 * order the test cases ran, then the exit's records that no test case's own records stand for
 * (allocated outside any test case). Indices into this list are how a framework test claims the
 * records it answers for.
 */
export function reportRecords(run: Pick<RunJson, 'leaks' | 'tests'>): LeakRecord[] {
  const own = new Set(run.tests.filter((t) => t.leaks !== undefined).map((t) => t.name))
  return [...run.tests.flatMap((t) => t.leaks ?? []), ...run.leaks.filter((r) => r.test === null || !own.has(r.test))]
}

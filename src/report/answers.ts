/**
 * The one rule of which framework test answers for which leak, and how: every report (the
 * terminal summary, leak-report.txt, leak-summary.json, the HTML report, the annotations) reads
 * a run's loss records through it, so they all say the same thing.
 *
 * A loss record (one of `reportRecords(run)`) is
 * - `failed` when a leak matcher failed on it (`toHaveNoLeaks`, `toLeakAtMost`, describeNative's
 *   tests): the tests whose matchers failed answer for it;
 * - `tolerated` when leak matchers checked it and all allowed it (`toLeakAtMost` within its
 *   limits, `.not.toHaveNoLeaks()`): those tests allowed it;
 * - `unchecked` when no leak matcher checked it (the test only made the run, took a snapshot or
 *   counted allocations, or the run was made in `beforeAll` and no test checked this part): it is
 *   listed under the tests that made the run, else under the test file.
 * A run made outside any test framework (`heapspec run`) answers for its own leaks: `failed`,
 * under the program and its test case.
 */
import { reportRecords } from '../model/run-records.js'
import type { LeakRecord } from '../model/types.js'
import { testLabel, type RecordedRun, type TestRef } from './saved-runs.js'

/** How a loss record stands with the tests (see the rule above). */
export type LeakStatus = 'failed' | 'tolerated' | 'unchecked'

/** One loss record of a run, with its status and the tests (labels) it is listed under. */
export interface AnsweredRecord {
  record: LeakRecord
  status: LeakStatus
  /** Test labels (`file > name`), or `program > test case` for a run made outside a test framework. */
  tests: string[]
  /** The test file of each label, or `null` outside a test framework. */
  files: (string | null)[]
}

/** Worst first: a stack that several records share takes the worst status among them. */
export const STATUS_ORDER: readonly LeakStatus[] = ['failed', 'unchecked', 'tolerated']

/** The worse of two statuses. */
export function worseStatus(a: LeakStatus, b: LeakStatus): LeakStatus {
  return STATUS_ORDER.indexOf(a) <= STATUS_ORDER.indexOf(b) ? a : b
}

/** Every loss record of a recorded run, as the rule above answers for it. */
export function answerRecords({ run, tests }: RecordedRun): AnsweredRecord[] {
  const records = reportRecords(run)
  if (tests.length === 0) {
    const program = run.program.command.join(' ')
    return records.map((record) => ({ record, status: 'failed' as const, tests: [record.test === null ? program : `${program} > ${record.test}`], files: [null] }))
  }
  // Claims of the whole run are shared by every record: worked out once, their label lists shared
  // (a run checked whole by thousands of tests costs them once, not once per record).
  const whole = tests.filter((t) => t.leaks === null)
  const byRecord = new Map<number, TestRef[]>()
  for (const t of tests) {
    for (const i of t.leaks ?? []) {
      const list = byRecord.get(i) ?? []
      byRecord.set(i, list)
      list.push(t)
    }
  }
  const listing = (listed: TestRef[]): { tests: string[]; files: (string | null)[] } => {
    const unique = new Map(listed.map((t) => [testLabel(t), t.file]))
    return { tests: [...unique.keys()], files: [...unique.values()] }
  }
  const decide = (covering: TestRef[]): { status: LeakStatus; tests: string[]; files: (string | null)[] } => {
    const failed = covering.filter((t) => t.verdict === 'failed')
    const passed = covering.filter((t) => t.verdict === 'passed')
    const made = covering.filter((t) => t.verdict === undefined)
    const madeNamed = made.filter((t) => t.name !== null)
    const [status, by]: [LeakStatus, TestRef[]] =
      failed.length > 0
        ? ['failed', failed]
        : passed.length > 0
          ? ['tolerated', passed]
          : ['unchecked', madeNamed.length > 0 ? madeNamed : made.length > 0 ? made : covering.map((t) => ({ ...t, name: null }))]
    // no claim covers it (tests only looked at other test cases): the test file stands for it
    return { status, ...listing(by.length > 0 ? by : [{ file: tests[0]!.file, name: null, leaks: null }]) }
  }
  const wholeOnly = decide(whole)
  return records.map((record, index) => {
    const own = byRecord.get(index)
    return { record, ...(own ? decide([...whole, ...own]) : wholeOnly) }
  })
}

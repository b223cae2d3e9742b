/**
 * The memory errors every report lists (the terminal summary, leak-report.txt, the HTML report,
 * leak-summary.json, the annotations): one row per error and test case that made it, pointing at
 * the bad call's line in the user's code, so they all say the same thing.
 */
import pc from 'picocolors'
import { testCaseErrors } from '../model/run-records.js'
import type { Frame, MemoryError } from '../model/types.js'
import { printable, printableLineStart } from './printable.js'
import type { RecordedRun } from './saved-runs.js'
import { formatFrame } from './text.js'
import { siteFrame } from './user-frame.js'

/** One memory error of one test case of a run (or made outside any test case). */
export interface MemoryErrorRow {
  /** `program > test case`, or the program alone for an error made outside any test case. */
  testCase: string
  /**
   * The test files whose tests made or checked the run; none for a run made outside a test
   * framework. (A matcher's check names no test case of a clean slice, so no finer claim is kept.)
   */
  files: string[]
  /** The error, `count` the times it happened in that test case. */
  error: MemoryError
  /** Where the bad call was made: the first frame in the user's code, else the first frame. */
  site: Frame | null
}


/** Every memory error of the runs: each test case's own (in the order the test cases ran), then those outside any. */
export function memoryErrorRows(runs: RecordedRun[]): MemoryErrorRow[] {
  const rows: MemoryErrorRow[] = []
  for (const recorded of runs) {
    const { run } = recorded
    const program = run.program.command.join(' ')
    const files = [...new Set(recorded.tests.flatMap((t) => (t.file === null ? [] : [t.file])))].sort()
    const row = (testCase: string, error: MemoryError): MemoryErrorRow => ({ testCase, files, error, site: siteFrame(error.stack) ?? null })
    // a test case run twice without its own list is listed once: the run's errors name it, not its runs
    const listed = new Set<string>()
    for (const t of run.tests) {
      if (!t.errors && listed.has(t.name)) continue
      listed.add(t.name)
      for (const error of testCaseErrors(run, t)) rows.push(row(`${program} > ${t.name}`, error))
    }
    for (const error of run.errors) if (error.test === null) rows.push(row(program, error))
  }
  return rows
}

/** `invalid-read (2 times): Invalid read of size 4` */
export function errorHeadline(error: MemoryError): string {
  const times = error.count !== undefined && error.count > 1 ? ` (${error.count.toLocaleString('en-US')} times)` : ''
  return `${error.kind}${times}${error.what ? `: ${error.what}` : ''}`
}

/** The address's story, a line per aux stack: `Address 0x... is 8 bytes after a block of size 32 alloc'd at f (a.c:3)`. */
export function errorStory(error: MemoryError): string[] {
  return (error.auxStacks ?? []).map(({ what, stack }) => {
    const frame = siteFrame(stack)
    return frame ? `${what}${/ at$/.test(what) ? ' ' : ' at '}${formatFrame(frame)}` : what
  })
}

/** Test cases the printed summary lists; the HTML report lists them all. */
const MAX_ERRORS_PRINTED = 50

/**
 * The summary's text for memory errors: a block per test case that made some, each error with its
 * line and story; empty when there are none.
 */
export function formatErrorSummary(rows: MemoryErrorRow[], options: { color?: boolean } = {}): string {
  if (rows.length === 0) return ''
  const c = pc.createColors(options.color ?? false)
  const byCase = new Map<string, MemoryErrorRow[]>()
  for (const row of rows) byCase.set(row.testCase, [...(byCase.get(row.testCase) ?? []), row])
  const cases = byCase.size
  const out = [c.bold(c.red(`heapspec: memory errors in ${cases} test case${cases === 1 ? '' : 's'} (or outside any)`))]
  // names and paths come from saved runs: printed so that they cannot end, begin or colour a line
  for (const [testCase, mine] of [...byCase].slice(0, MAX_ERRORS_PRINTED)) {
    const made = mine[0]!.files.length > 0 ? c.dim(` (run in ${printable(mine[0]!.files.join(', '))})`) : ''
    out.push('', `  ${c.bold(printableLineStart(testCase))}${made}`)
    for (const { error, site } of mine) {
      out.push(`    ${c.red(printable(errorHeadline(error)))}${site ? ` at ${c.cyan(printable(formatFrame(site)))}` : ''}`)
      for (const line of errorStory(error)) out.push(`      ${printable(line)}`)
    }
  }
  const more = cases - MAX_ERRORS_PRINTED
  if (more > 0) out.push('', `  ... and ${more.toLocaleString('en-US')} more test case${more === 1 ? '' : 's'} (the HTML report lists them all)`)
  return out.join('\n') + '\n'
}

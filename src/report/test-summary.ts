/** The per-test leak summary the reporters print at the end of a run (and `heapspec report` prints). */
import pc from 'picocolors'
import { emptyLeakSummary, LEAK_KINDS, type LeakKind, type LeakRecord, type LeakSummary } from '../model/types.js'
import { amountOf } from './leak-tree.js'
import { testLabel, type RecordedRun } from './saved-runs.js'
import { describeEnding, formatAmount, formatFrame, KIND_WORDS } from './text.js'
import { printable, printableLineStart } from './printable.js'
import { siteFrame } from './user-frame.js'

/** One test's leaks: what it made or checked. */
export interface TestLeaks {
  /** `test/list.test.ts > suite > test`, or for a run made outside a test framework, `program > test case`. */
  test: string
  /** The test file, relative to the project root; `null` outside a test framework. */
  file: string | null
  leaked: LeakSummary
  /** Where its biggest leak of a failing kind (else of any kind) was allocated: `fn (file:line)`. */
  topSite: string | null
}

/** Tests the printed summary lists; the rest are counted (the HTML report lists them all). */
export const MAX_TESTS_PRINTED = 50

/** Which of `a` and `b` is the bigger leak: a failing kind first, then bytes, then blocks; `a` on a tie. */
function bigger(a: LeakRecord | undefined, b: LeakRecord, kinds: readonly LeakKind[]): LeakRecord {
  if (!a) return b
  const order = Number(kinds.includes(b.kind)) - Number(kinds.includes(a.kind)) || b.bytes - a.bytes || b.blocks - a.blocks
  return order > 0 ? b : a
}

/** What one test answers for: whole runs (it checked all of them), and records of others. */
interface Claims {
  file: string | null
  wholeRuns: Set<number>
  records: Map<number, Set<number>>
}

/**
 * Each test's leaks, worst first: the loss records of the runs it made, and of the runs or test
 * cases it checked. Runs made outside a test framework (`heapspec run`) count per native test case.
 * Only tests that leaked something are listed. A run claimed whole by many tests is added up once.
 */
export function summarizeTests(runs: RecordedRun[], kinds: readonly LeakKind[]): TestLeaks[] {
  const byTest = new Map<string, Claims>()
  const claims = (test: string, file: string | null): Claims => {
    const entry = byTest.get(test) ?? { file, wholeRuns: new Set<number>(), records: new Map<number, Set<number>>() }
    byTest.set(test, entry)
    return entry
  }
  const claimRecord = (entry: Claims, run: number, index: number): void => {
    const set = entry.records.get(run) ?? new Set<number>()
    entry.records.set(run, set)
    set.add(index)
  }
  runs.forEach(({ run, tests }, r) => {
    if (tests.length === 0) {
      const program = run.program.command.join(' ')
      run.leaks.forEach((l, i) => claimRecord(claims(l.test === null ? program : `${program} > ${l.test}`, null), r, i))
      return
    }
    for (const t of tests) {
      const entry = claims(testLabel(t), t.file)
      if (t.leaks === null) entry.wholeRuns.add(r)
      else for (const i of t.leaks) if (run.leaks[i]) claimRecord(entry, r, i)
    }
  })
  // a whole run's sum and biggest record, once per run however many tests claimed it
  const whole = new Map<number, { leaked: LeakSummary; biggest: LeakRecord | undefined }>()
  const wholeRun = (r: number): { leaked: LeakSummary; biggest: LeakRecord | undefined } => {
    let found = whole.get(r)
    if (!found) {
      found = { leaked: emptyLeakSummary(), biggest: undefined }
      for (const l of runs[r]!.run.leaks) {
        found.leaked[l.kind].bytes += l.bytes
        found.leaked[l.kind].blocks += l.blocks
        found.biggest = bigger(found.biggest, l, kinds)
      }
      whole.set(r, found)
    }
    return found
  }
  const rows: (TestLeaks & { failing: number; all: number })[] = []
  for (const [test, { file, wholeRuns, records }] of byTest) {
    const leaked = emptyLeakSummary()
    let biggest: LeakRecord | undefined
    let any = false
    // in the order of the runs, as the records were claimed: the first of equal leaks names the site
    for (const r of [...new Set([...wholeRuns, ...records.keys()])].sort((a, b) => a - b)) {
      if (wholeRuns.has(r)) {
        const w = wholeRun(r)
        if (!w.biggest) continue
        any = true
        for (const k of LEAK_KINDS) {
          leaked[k].bytes += w.leaked[k].bytes
          leaked[k].blocks += w.leaked[k].blocks
        }
        biggest = bigger(biggest, w.biggest, kinds)
        continue
      }
      for (const i of records.get(r)!) {
        const l = runs[r]!.run.leaks[i]!
        any = true
        leaked[l.kind].bytes += l.bytes
        leaked[l.kind].blocks += l.blocks
        biggest = bigger(biggest, l, kinds)
      }
    }
    if (!any) continue
    const frame = siteFrame(biggest!.stack)
    rows.push({ test, file, leaked, topSite: frame ? formatFrame(frame) : null, failing: amountOf(leaked, kinds).bytes, all: amountOf(leaked, LEAK_KINDS).bytes })
  }
  rows.sort((a, b) => b.failing - a.failing || b.all - a.all || (a.test < b.test ? -1 : a.test > b.test ? 1 : 0))
  return rows.map(({ test, file, leaked, topSite }) => ({ test, file, leaked, topSite }))
}

/** `definitely, indirectly or possibly lost` */
function kindWords(kinds: readonly LeakKind[]): string {
  const words = kinds.map((k) => KIND_WORDS[k].replace(/ lost$/, ''))
  const phrase = words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`
  return kinds.every((k) => k !== 'reachable') ? `${phrase} lost` : phrase
}

/**
 * The summary's text: a block per test that leaked one of the failing kinds, worst first, with
 * its leaked bytes and blocks by kind and its top allocation site. Empty when no test did.
 */
export function formatTestSummary(rows: TestLeaks[], options: { kinds: readonly LeakKind[]; color?: boolean }): string {
  const c = pc.createColors(options.color ?? false)
  const failing = rows.filter((r) => amountOf(r.leaked, options.kinds).blocks > 0)
  if (failing.length === 0) return ''
  const out = [c.bold(c.red(`heapspec: ${failing.length} test${failing.length === 1 ? '' : 's'} leaked memory (${kindWords(options.kinds)})`))]
  for (const row of failing.slice(0, MAX_TESTS_PRINTED)) {
    const amounts = LEAK_KINDS.filter((k) => row.leaked[k].blocks > 0).map((k) => {
      const text = `${KIND_WORDS[k]}: ${formatAmount(row.leaked[k])}`
      return options.kinds.includes(k) ? c.red(text) : c.yellow(text)
    })
    // names come from saved runs: printed so that they cannot end, begin or colour a line
    out.push('', `  ${c.bold(printableLineStart(row.test))}`, `    ${amounts.join(', ')}`)
    if (row.topSite) out.push(`    top allocation site: ${c.cyan(printable(row.topSite))}`)
  }
  const more = failing.length - MAX_TESTS_PRINTED
  if (more > 0) out.push('', `  ... and ${more.toLocaleString('en-US')} more test${more === 1 ? '' : 's'} (the HTML report lists them all)`)
  return out.join('\n') + '\n'
}

/**
 * The text report of a set of runs (`heapspec report`, leak-report.txt): the per-test summary, or
 * a line saying nothing leaked, then a line per program that failed and per run with memory errors.
 */
export function formatSummaryReport(runs: RecordedRun[], options: { kinds: readonly LeakKind[]; color?: boolean }): string {
  const c = pc.createColors(options.color ?? false)
  const summary = formatTestSummary(summarizeTests(runs, options.kinds), options)
  const lines: string[] = []
  for (const { run } of runs) {
    const program = printable(run.program.command.join(' '))
    if (run.program.exitCode !== 0 || run.program.signal !== null) lines.push(c.red(`heapspec: ${program} ${printable(describeEnding(run))}.`) + '\n')
    if (run.errors.length > 0) {
      const kinds = printable([...new Set(run.errors.map((e) => e.kind))].join(', '))
      lines.push(c.red(`heapspec: ${run.errors.length} memory error${run.errors.length === 1 ? '' : 's'} in ${program} (${kinds}).`) + '\n')
    }
  }
  const more = lines.length - MAX_TESTS_PRINTED
  if (more > 0) lines.splice(MAX_TESTS_PRINTED, more, `heapspec: ... and ${more.toLocaleString('en-US')} more line${more === 1 ? '' : 's'} like these (failed programs, memory errors).\n`)
  return [summary || `heapspec: no leaks in ${runs.length} run${runs.length === 1 ? '' : 's'}.\n`, ...lines].join('\n')
}

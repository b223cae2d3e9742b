/** The per-test leak summary the reporters print at the end of a run (and `heapspec report` prints). */
import pc from 'picocolors'
import { emptyLeakSummary, LEAK_KINDS, type LeakKind, type LeakRecord, type LeakSummary } from '../model/types.js'
import { amountOf } from './leak-tree.js'
import { testLabel, type RecordedRun } from './saved-runs.js'
import { describeEnding, formatAmount, formatFrame, KIND_WORDS } from './text.js'
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

/**
 * Each test's leaks, worst first: the loss records of the runs it made, and of the runs or test
 * cases it checked. Runs made outside a test framework (`heapspec run`) count per native test case.
 * Only tests that leaked something are listed.
 */
export function summarizeTests(runs: RecordedRun[], kinds: readonly LeakKind[]): TestLeaks[] {
  const byTest = new Map<string, { file: string | null; records: Set<LeakRecord> }>()
  const claim = (test: string, file: string | null, records: LeakRecord[]): void => {
    const entry = byTest.get(test) ?? { file, records: new Set<LeakRecord>() }
    byTest.set(test, entry)
    for (const r of records) entry.records.add(r)
  }
  for (const { run, tests } of runs) {
    if (tests.length === 0) {
      const program = run.program.command.join(' ')
      for (const r of run.leaks) claim(r.test === null ? program : `${program} > ${r.test}`, null, [r])
      continue
    }
    for (const t of tests) claim(testLabel(t), t.file, t.leaks === null ? run.leaks : t.leaks.map((i) => run.leaks[i]!).filter(Boolean))
  }
  const rows: (TestLeaks & { failing: number; all: number })[] = []
  for (const [test, { file, records }] of byTest) {
    if (records.size === 0) continue
    const leaked = emptyLeakSummary()
    for (const r of records) {
      leaked[r.kind].bytes += r.bytes
      leaked[r.kind].blocks += r.blocks
    }
    const ranked = [...records].sort((a, b) => Number(kinds.includes(b.kind)) - Number(kinds.includes(a.kind)) || b.bytes - a.bytes || b.blocks - a.blocks)
    const frame = siteFrame(ranked[0]!.stack)
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
  for (const row of failing) {
    const amounts = LEAK_KINDS.filter((k) => row.leaked[k].blocks > 0).map((k) => {
      const text = `${KIND_WORDS[k]}: ${formatAmount(row.leaked[k])}`
      return options.kinds.includes(k) ? c.red(text) : c.yellow(text)
    })
    out.push('', `  ${c.bold(row.test)}`, `    ${amounts.join(', ')}`)
    if (row.topSite) out.push(`    top allocation site: ${c.cyan(row.topSite)}`)
  }
  return out.join('\n') + '\n'
}

/**
 * The text report of a set of runs (`heapspec report`, leak-report.txt): the per-test summary, or
 * a line saying nothing leaked, then a line per program that failed and per run with memory errors.
 */
export function formatSummaryReport(runs: RecordedRun[], options: { kinds: readonly LeakKind[]; color?: boolean }): string {
  const c = pc.createColors(options.color ?? false)
  const summary = formatTestSummary(summarizeTests(runs, options.kinds), options)
  const lines = [summary || `heapspec: no leaks in ${runs.length} run${runs.length === 1 ? '' : 's'}.\n`]
  for (const { run } of runs) {
    const program = run.program.command.join(' ')
    if (run.program.exitCode !== 0 || run.program.signal !== null) lines.push(c.red(`heapspec: ${program} ${describeEnding(run)}.`) + '\n')
    if (run.errors.length > 0) {
      const kinds = [...new Set(run.errors.map((e) => e.kind))].join(', ')
      lines.push(c.red(`heapspec: ${run.errors.length} memory error${run.errors.length === 1 ? '' : 's'} in ${program} (${kinds}).`) + '\n')
    }
  }
  return lines.join('\n')
}

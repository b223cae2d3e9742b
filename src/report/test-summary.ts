/** The per-test leak summary the reporters print at the end of a run (and `heapspec report` prints). */
import pc from 'picocolors'
import { emptyLeakSummary, LEAK_KINDS, type LeakKind, type LeakRecord, type LeakSummary } from '../model/types.js'
import { amountOf } from './leak-tree.js'
import type { RecordedRun } from './saved-runs.js'
import { describeEnding, formatAmount, formatFrame, KIND_WORDS } from './text.js'
import { printable, printableLineStart } from './printable.js'
import { siteFrame } from './user-frame.js'
import { answerRecords, STATUS_ORDER, type LeakStatus } from './answers.js'
import { formatErrorSummary, memoryErrorRows } from './memory-errors.js'

/** One test's leaks, by how it stands with them (answers.ts). */
export interface TestLeaks {
  /** `test/list.test.ts > suite > test`, or for a run made outside a test framework, `program > test case`. */
  test: string
  /** The test file, relative to the project root; `null` outside a test framework. */
  file: string | null
  /** `failed`: its leak matchers failed on these leaks; `tolerated`: they allowed them; `unchecked`: no leak matcher checked them. */
  status: LeakStatus
  leaked: LeakSummary
  /** Where its biggest leak of a failing kind (else of any kind) was allocated: `fn (file:line)`. */
  topSite: string | null
}

/** Tests the printed summary lists; the rest are counted (the HTML report lists them all). */
export const MAX_TESTS_PRINTED = 50

/**
 * Each test's leaks, as the one rule of answers.ts lists them: failed first, then unchecked, then
 * tolerated, each worst first. Only rows with some leak are listed.
 */
export function summarizeTests(runs: RecordedRun[], kinds: readonly LeakKind[]): TestLeaks[] {
  // Records listed under the same tests (one shared list: a run checked whole) are grouped first,
  // and a group's sum and biggest record worked out once: a run of thousands of records checked by
  // thousands of tests costs records + tests, not both.
  interface Group {
    files: (string | null)[]
    records: LeakRecord[]
    summed?: { leaked: LeakSummary; biggest: LeakRecord }
  }
  const groups = new Map<string[], Map<LeakStatus, Group>>()
  for (const recorded of runs) {
    for (const { record, status, tests, files } of answerRecords(recorded)) {
      let byStatus = groups.get(tests)
      if (!byStatus) groups.set(tests, (byStatus = new Map()))
      let group = byStatus.get(status)
      if (!group) byStatus.set(status, (group = { files, records: [] }))
      group.records.push(record)
    }
  }
  const rank = (a: LeakRecord, b: LeakRecord): number => Number(kinds.includes(b.kind)) - Number(kinds.includes(a.kind)) || b.bytes - a.bytes || b.blocks - a.blocks
  const sum = (records: Iterable<LeakRecord>): { leaked: LeakSummary; biggest: LeakRecord } => {
    const leaked = emptyLeakSummary()
    let biggest: LeakRecord | undefined
    for (const r of records) {
      leaked[r.kind].bytes += r.bytes
      leaked[r.kind].blocks += r.blocks
      if (!biggest || rank(biggest, r) > 0) biggest = r
    }
    return { leaked, biggest: biggest! }
  }
  const byRow = new Map<string, { test: string; file: string | null; status: LeakStatus; groups: Group[] }>()
  for (const [tests, byStatus] of groups) {
    for (const [status, group] of byStatus) {
      tests.forEach((test, i) => {
        const key = JSON.stringify([test, status])
        const row = byRow.get(key) ?? { test, file: group.files[i] ?? null, status, groups: [] }
        byRow.set(key, row)
        row.groups.push(group)
      })
    }
  }
  const rows: (TestLeaks & { failing: number; all: number })[] = []
  for (const { test, file, status, groups: mine } of byRow.values()) {
    // one group: its sum, shared; several: their records once each
    const { leaked, biggest } = mine.length === 1 ? (mine[0]!.summed ??= sum(mine[0]!.records)) : sum(new Set(mine.flatMap((g) => g.records)))
    const frame = siteFrame(biggest.stack)
    rows.push({ test, file, status, leaked, topSite: frame ? formatFrame(frame) : null, failing: amountOf(leaked, kinds).bytes, all: amountOf(leaked, LEAK_KINDS).bytes })
  }
  rows.sort((a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) || b.failing - a.failing || b.all - a.all || (a.test < b.test ? -1 : a.test > b.test ? 1 : 0))
  return rows.map(({ test, file, status, leaked, topSite }) => ({ test, file, status, leaked: { ...leaked }, topSite }))
}

/** `definitely, indirectly or possibly lost` */
function kindWords(kinds: readonly LeakKind[]): string {
  const words = kinds.map((k) => KIND_WORDS[k].replace(/ lost$/, ''))
  const phrase = words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`
  return kinds.every((k) => k !== 'reachable') ? `${phrase} lost` : phrase
}

/**
 * The summary's text: a block per test whose leak matchers failed on leaks of the failing kinds,
 * worst first, with its leaked bytes and blocks by kind and its top allocation site; then the same
 * for leaks no test checked (under the tests that made their runs, or their test file); then one
 * line for the leaks tests allowed. Empty when none of the failing kinds leaked.
 */
export function formatTestSummary(rows: TestLeaks[], options: { kinds: readonly LeakKind[]; color?: boolean }): string {
  const c = pc.createColors(options.color ?? false)
  const leaking = rows.filter((r) => amountOf(r.leaked, options.kinds).blocks > 0)
  const block = (row: TestLeaks): string[] => {
    const amounts = LEAK_KINDS.filter((k) => row.leaked[k].blocks > 0).map((k) => {
      const text = `${KIND_WORDS[k]}: ${formatAmount(row.leaked[k])}`
      return options.kinds.includes(k) ? c.red(text) : c.yellow(text)
    })
    // names come from saved runs: printed so that they cannot end, begin or colour a line
    return ['', `  ${c.bold(printableLineStart(row.test))}`, `    ${amounts.join(', ')}`, ...(row.topSite ? [`    top allocation site: ${c.cyan(printable(row.topSite))}`] : [])]
  }
  const listed = (rows: TestLeaks[]): string[] => {
    const lines = rows.slice(0, MAX_TESTS_PRINTED).flatMap(block)
    const more = rows.length - MAX_TESTS_PRINTED
    if (more > 0) lines.push('', `  ... and ${more.toLocaleString('en-US')} more test${more === 1 ? '' : 's'} (the HTML report lists them all)`)
    return lines
  }
  const out: string[] = []
  const failed = leaking.filter((r) => r.status === 'failed')
  if (failed.length > 0) {
    out.push(c.bold(c.red(`heapspec: ${failed.length} test${failed.length === 1 ? '' : 's'} leaked memory (${kindWords(options.kinds)})`)))
    out.push(...listed(failed))
  }
  const unchecked = leaking.filter((r) => r.status === 'unchecked')
  if (unchecked.length > 0) {
    if (out.length > 0) out.push('')
    out.push(c.bold(c.yellow(`heapspec: leaks no test checked (${kindWords(options.kinds)}), where their runs were made`)))
    out.push(...listed(unchecked))
  }
  const tolerated = leaking.filter((r) => r.status === 'tolerated')
  if (tolerated.length > 0) {
    if (out.length > 0) out.push('')
    // named in the leak report, not here: they passed
    out.push(`heapspec: ${tolerated.length} test${tolerated.length === 1 ? '' : 's'} allowed the leaks ${tolerated.length === 1 ? 'it' : 'they'} checked (${kindWords(options.kinds)}; see the leak report)`)
  }
  return out.length > 0 ? out.join('\n') + '\n' : ''
}

/**
 * The text report of a set of runs (`heapspec report`, leak-report.txt): the per-test summary, or
 * a line saying nothing leaked, then the test cases that made memory errors, then a line per
 * program that failed.
 */
export function formatSummaryReport(runs: RecordedRun[], options: { kinds: readonly LeakKind[]; color?: boolean }): string {
  const c = pc.createColors(options.color ?? false)
  const summary = formatTestSummary(summarizeTests(runs, options.kinds), options)
  const lines: string[] = []
  for (const { run } of runs) {
    const program = printable(run.program.command.join(' '))
    if (run.program.exitCode !== 0 || run.program.signal !== null) lines.push(c.red(`heapspec: ${program} ${printable(describeEnding(run))}.`) + '\n')
  }
  const more = lines.length - MAX_TESTS_PRINTED
  if (more > 0) lines.splice(MAX_TESTS_PRINTED, more, `heapspec: ... and ${more.toLocaleString('en-US')} more failed program${more === 1 ? '' : 's'}.\n`)
  const errors = formatErrorSummary(memoryErrorRows(runs), options)
  return [summary || `heapspec: no leaks in ${runs.length} run${runs.length === 1 ? '' : 's'}.\n`, ...(errors ? [errors] : []), ...lines].join('\n')
}

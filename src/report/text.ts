import pc from 'picocolors'
import { reportRecords, testCaseErrors } from '../model/run-records.js'
import type { Amount, Frame, LeakKind, LeakRecord, RunJson } from '../model/types.js'
import { printable, printableLineStart } from './printable.js'

/** What memcheck calls each kind in its report. */
export const KIND_WORDS: Record<LeakKind, string> = {
  definite: 'definitely lost',
  indirect: 'indirectly lost',
  possible: 'possibly lost',
  reachable: 'still reachable',
}

/** memcheck's words in one line, for readers who never used it: the end of a report with leaks. */
export const KIND_LEGEND =
  'definitely lost: nothing points to the block any more; indirectly lost: only lost blocks point to it; possibly lost: only a pointer into its middle; still reachable: still pointed to at exit (reported, not failed); in use at exit: not freed.'

/** Kinds that fail a run unless the user says otherwise. */
export const FAILING_KINDS: readonly LeakKind[] = ['definite', 'indirect', 'possible']

type Colors = ReturnType<typeof pc.createColors>

/** `1,285`, as toLocaleString('en-US') writes integers, without loading ICU's locale data (a run's first call costs ~10 ms). */
function n(value: number): string {
  if (!Number.isSafeInteger(value)) return value.toLocaleString('en-US')
  const digits = String(Math.abs(value))
  let out = ''
  for (let i = 0; i < digits.length; i++) out += (i > 0 && (digits.length - i) % 3 === 0 ? ',' : '') + digits[i]
  return value < 0 ? `-${out}` : out
}

/** Bytes for reading: `600 B`, `1.2 KiB`, `3.0 MiB`. */
export function humanBytes(value: number): string {
  if (value < 1024) return `${value} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let scaled = value / 1024
  let unit = 0
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024
    unit++
  }
  return `${scaled.toFixed(1)} ${units[unit]}`
}

/** `600 bytes in 3 blocks` */
export function formatAmount(a: Amount): string {
  return `${n(a.bytes)} bytes in ${n(a.blocks)} block${a.blocks === 1 ? '' : 's'}`
}

/** `fn (file:line)`, or `fn (object)` without debug info: how every report names a frame. */
export function formatFrame(frame: Frame): string {
  const where = frame.file ? `${frame.file}:${frame.line ?? '?'}` : frame.object
  return `${frame.fn ?? frame.pc ?? '???'}${where ? ` (${where})` : ''}`
}

/** Each frame's printed text, by the frame: 100,000 records share their callers' frames. */
type FrameTexts = Map<Frame, string>

function frameText(frame: Frame, texts: FrameTexts): string {
  let text = texts.get(frame)
  if (text === undefined) texts.set(frame, (text = printable(formatFrame(frame))))
  return text
}

/** The last record's first line, kept: records come biggest first, and runs of them have the same amounts. */
interface HeadMemo {
  kind?: LeakKind
  bytes?: number
  blocks?: number
  text?: string
}

function recordHead(r: LeakRecord, c: Colors, memo: HeadMemo): string {
  if (memo.kind !== r.kind || memo.bytes !== r.bytes || memo.blocks !== r.blocks) {
    const head = `${formatAmount(r)} ${r.blocks === 1 ? 'is' : 'are'} ${KIND_WORDS[r.kind]}`
    memo.kind = r.kind
    memo.bytes = r.bytes
    memo.blocks = r.blocks
    memo.text = FAILING_KINDS.includes(r.kind) ? c.bold(c.red(head)) : c.yellow(head)
  }
  return memo.text!
}

function record(r: LeakRecord, c: Colors, suppressions: boolean, texts: FrameTexts, memo: HeadMemo): string {
  let text = recordHead(r, c, memo)
  const stack = r.stack
  for (let i = 0; i < stack.length; i++) text += i === 0 ? `\n    at ${c.cyan(frameText(stack[0]!, texts))}` : `\n    by ${frameText(stack[i]!, texts)}`
  if (stack.length === 0) text += '\n    (no stack)'
  if (suppressions && r.suppression) text += `\n${r.suppression}`
  return text
}

/** How the program ended, in words (`stoppedBy`: the signal heapspec got, when that stopped it, not its timeout). */
export function describeEnding(run: RunJson, stoppedBy?: string): string {
  const p = run.program
  if (p.timedOut) return stoppedBy ? `was stopped when heapspec got ${stoppedBy}` : 'was stopped by the timeout'
  if (p.signal) return `was killed by ${p.signal}`
  return `exited with code ${p.exitCode}`
}

/**
 * The leak report: a record per (kind, stack), biggest first, then the heap and leak summaries,
 * in memcheck's words so it reads like the report users know. Colour only when asked.
 */
export function formatReport(run: RunJson, options: { color?: boolean; suppressions?: boolean; stoppedBy?: string } = {}): string {
  const c = pc.createColors(options.color ?? false)
  const out: string[] = []
  // what the program named (test cases, functions) is printed so that it cannot end, begin or colour a line
  out.push(c.bold(`heapspec: ${printable(run.program.command.join(' '))} ${printable(describeEnding(run, options.stoppedBy))} (backend: ${printable(run.backend)})`))
  for (const warning of run.warnings ?? []) out.push(c.yellow(`warning: ${printable(warning)}`))
  // memcheck's way: the words, the stack, then the address's story with its own stacks
  for (const error of run.errors) {
    const inTest = error.test === null ? '' : ` (in test case "${error.test}")`
    const times = error.count !== undefined && error.count > 1 ? ` (${n(error.count)} times)` : ''
    out.push('', c.red(printableLineStart(`${error.kind}${times}${error.what ? `: ${error.what}` : ''}${inTest}`)))
    error.stack.forEach((frame, i) => out.push(`    ${i === 0 ? 'at' : 'by'} ${i === 0 ? c.cyan(printable(formatFrame(frame))) : printable(formatFrame(frame))}`))
    for (const aux of error.auxStacks ?? []) {
      out.push(`  ${printable(aux.what)}`)
      aux.stack.forEach((frame, i) => out.push(`    ${i === 0 ? 'at' : 'by'} ${printable(formatFrame(frame))}`))
    }
  }
  // Each test case's own records (what it answers for), in the order the test cases ran; then the rest.
  const byTest = new Map<string | null, LeakRecord[]>()
  for (const r of reportRecords(run)) {
    const list = byTest.get(r.test)
    if (list) list.push(r)
    else byTest.set(r.test, [r])
  }
  const groups = [...new Set([...run.tests.map((t) => t.name), null])]
  const texts: FrameTexts = new Map()
  const heads: HeadMemo = {}
  for (const test of groups) {
    const mine = byTest.get(test) ?? []
    if (mine.length === 0) continue
    if (run.tests.length > 0) out.push('', c.bold(test === null ? 'Outside any test case:' : `Test case "${printable(test)}":`))
    for (const r of mine) out.push('', record(r, c, options.suppressions ?? false, texts, heads))
  }
  out.push('', c.bold('HEAP SUMMARY:'))
  out.push(`    in use at exit: ${formatAmount(run.inUseAtExit)}`)
  out.push(`  total heap usage: ${n(run.totals.allocations)} allocs, ${n(run.totals.frees)} frees, ${n(run.totals.bytesAllocated)} bytes allocated`)
  out.push('', c.bold('LEAK SUMMARY:'))
  for (const kind of ['definite', 'indirect', 'possible', 'reachable'] as const) {
    const line = `  ${KIND_WORDS[kind].padStart(16)}: ${formatAmount(run.leakSummary[kind])}`
    out.push(FAILING_KINDS.includes(kind) && run.leakSummary[kind].blocks > 0 ? c.red(line) : line)
  }
  if (run.suppressed) out.push(`  ${'suppressed'.padStart(16)}: ${formatAmount(run.suppressed)}`)
  if (run.tests.length > 0) {
    out.push('', c.bold('TEST CASES:'))
    for (const t of run.tests) {
      const lost = FAILING_KINDS.reduce((sum, k) => sum + t.leakSummary[k].bytes, 0)
      const suppressed = t.suppressed && t.suppressed.blocks > 0 ? `, ${n(t.suppressed.bytes)} bytes suppressed` : ''
      const errors = testCaseErrors(run, t).length
      const made = errors > 0 ? `, ${n(errors)} memory error${errors === 1 ? '' : 's'}` : ''
      const line = `  ${t.name}: ${n(t.allocations)} allocs, ${n(t.frees)} frees, ${n(t.bytesAllocated)} bytes allocated, ${n(lost)} bytes lost${suppressed}${made}`
      out.push(lost > 0 || errors > 0 ? c.red(line) : line)
    }
  }
  if (run.leaks.length > 0) out.push('', c.dim(KIND_LEGEND))
  // the summaries above count what was seen; where that is not the whole run they must not read as a verdict
  if (run.incomplete) out.push('', c.red('heapspec: this run was not seen whole (the warning above says why): the figures above are what heapspec saw, not a verdict'))
  return out.join('\n') + '\n'
}

/** Whether the run fails: the program failed, or leaked (failing kinds), or made memory errors. */
export function runFails(run: RunJson): boolean {
  if (run.program.exitCode !== 0 || run.program.signal || run.incomplete) return true
  if (run.errors.length > 0) return true
  // a test case answers for blocks lost at its end, even those freed by exit
  return FAILING_KINDS.some((kind) => run.leakSummary[kind].blocks > 0 || run.tests.some((t) => t.leakSummary[kind].blocks > 0))
}

import pc from 'picocolors'
import type { Amount, Frame, LeakKind, LeakRecord, RunJson } from '../model/types.js'

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

/** `1,285` */
function n(value: number): string {
  return value.toLocaleString('en-US')
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

function record(r: LeakRecord, c: Colors): string {
  const failing = FAILING_KINDS.includes(r.kind)
  const head = `${formatAmount(r)} ${r.blocks === 1 ? 'is' : 'are'} ${KIND_WORDS[r.kind]}`
  const lines = [failing ? c.bold(c.red(head)) : c.yellow(head)]
  r.stack.forEach((frame, i) => lines.push(`    ${i === 0 ? 'at' : 'by'} ${i === 0 ? c.cyan(formatFrame(frame)) : formatFrame(frame)}`))
  if (r.stack.length === 0) lines.push('    (no stack)')
  return lines.join('\n')
}

/** How the program ended, in words. */
export function describeEnding(run: RunJson): string {
  const p = run.program
  if (p.timedOut) return 'was stopped by the timeout'
  if (p.signal) return `was killed by ${p.signal}`
  return `exited with code ${p.exitCode}`
}

/**
 * The leak report: a record per (kind, stack), biggest first, then the heap and leak summaries,
 * in memcheck's words so it reads like the report users know. Colour only when asked.
 */
export function formatReport(run: RunJson, options: { color?: boolean } = {}): string {
  const c = pc.createColors(options.color ?? false)
  const out: string[] = []
  out.push(c.bold(`heapspec: ${run.program.command.join(' ')} ${describeEnding(run)} (backend: ${run.backend})`))
  for (const warning of run.warnings ?? []) out.push(c.yellow(`warning: ${warning}`))
  for (const error of run.errors) {
    out.push('', c.red(`${error.kind}${error.what ? `: ${error.what}` : ''}`))
    error.stack.forEach((frame, i) => out.push(`    ${i === 0 ? 'at' : 'by'} ${formatFrame(frame)}`))
  }
  // Records grouped by the test case that allocated them, in the order the test cases ran.
  const groups = [...run.tests.map((t) => t.name), null]
  for (const test of groups) {
    const records = run.leaks.filter((r) => r.test === test)
    if (records.length === 0) continue
    if (run.tests.length > 0) out.push('', c.bold(test === null ? 'Outside any test case:' : `Test case "${test}":`))
    for (const r of records) out.push('', record(r, c))
  }
  out.push('', c.bold('HEAP SUMMARY:'))
  out.push(`    in use at exit: ${formatAmount(run.inUseAtExit)}`)
  out.push(`  total heap usage: ${n(run.totals.allocations)} allocs, ${n(run.totals.frees)} frees, ${n(run.totals.bytesAllocated)} bytes allocated`)
  out.push('', c.bold('LEAK SUMMARY:'))
  for (const kind of ['definite', 'indirect', 'possible', 'reachable'] as const) {
    const line = `  ${KIND_WORDS[kind].padStart(16)}: ${formatAmount(run.leakSummary[kind])}`
    out.push(FAILING_KINDS.includes(kind) && run.leakSummary[kind].blocks > 0 ? c.red(line) : line)
  }
  if (run.tests.length > 0) {
    out.push('', c.bold('TEST CASES:'))
    for (const t of run.tests) {
      const lost = FAILING_KINDS.reduce((sum, k) => sum + t.leakSummary[k].bytes, 0)
      const line = `  ${t.name}: ${n(t.allocations)} allocs, ${n(t.frees)} frees, ${n(t.bytesAllocated)} bytes allocated, ${n(lost)} bytes lost`
      out.push(lost > 0 ? c.red(line) : line)
    }
  }
  if (run.leaks.length > 0) out.push('', c.dim(KIND_LEGEND))
  return out.join('\n') + '\n'
}

/** Whether the run fails: the program failed, or leaked (failing kinds), or made memory errors. */
export function runFails(run: RunJson): boolean {
  if (run.program.exitCode !== 0 || run.program.signal || run.incomplete) return true
  if (run.errors.length > 0) return true
  return FAILING_KINDS.some((kind) => run.leakSummary[kind].blocks > 0)
}

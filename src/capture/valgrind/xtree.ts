import { CaptureFailedError } from '../../errors.js'
import type { Amount, HeapTotals } from '../../model/types.js'

/** memcheck's heap summary: what its text log prints as "in use at exit" and "total heap usage". */
export interface HeapSummary {
  totals: HeapTotals
  inUseAtExit: Amount
}

/** The events `--xtree-memory=full` counts, as its report names them. */
const EVENTS = ['curB', 'curBk', 'totB', 'totBk', 'totFdB', 'totFdBk'] as const

/**
 * Reads the heap summary from memcheck's xtree memory report (`--xtree-memory=full`, callgrind
 * format). With `--xml=yes` memcheck prints no heap summary at all; the report's `totals:` line
 * holds the same counters (current bytes and blocks, allocated bytes and blocks, freed blocks), so
 * the figures equal what memcheck's text output would print for the same run.
 */
export function parseXtreeTotals(text: string, source: string): HeapSummary {
  const fail = (what: string): CaptureFailedError =>
    new CaptureFailedError(
      `heapspec: memcheck's xtree memory report (${source}) ${what}. ` +
        `valgrind stopped before writing it, or this valgrind writes another format; run with HEAPSPEC_DEBUG=1 to see its log.`,
    )
  const events = /^events:[ \t]*(.*?)[ \t]*$/m.exec(text)
  if (!events) throw fail('has no `events:` line')
  const names = events[1]!.split(/[ \t]+/)
  const totalsLines = text.match(/^totals:.*$/gm) ?? []
  if (totalsLines.length !== 1) throw fail(totalsLines.length === 0 ? 'has no `totals:` line' : `has ${totalsLines.length} \`totals:\` lines`)
  // memcheck writes `(null)` when nothing was allocated yet (an empty tree): every counter is 0.
  if (/^totals:[ \t]*\(null\)[ \t]*$/.test(totalsLines[0]!)) {
    return { totals: { allocations: 0, frees: 0, bytesAllocated: 0 }, inUseAtExit: { bytes: 0, blocks: 0 } }
  }
  const m = /^totals:((?:[ \t]+\d+)+)[ \t]*$/.exec(totalsLines[0]!)
  if (!m) throw fail(`has a \`totals:\` line heapspec cannot read (\`${totalsLines[0]}\`)`)
  const values = m[1]!.trim().split(/[ \t]+/).map(Number)
  if (values.length !== names.length) throw fail(`has ${values.length} totals for ${names.length} events (\`${events[1]}\`)`)
  const value = (event: (typeof EVENTS)[number]): number => {
    const at = names.indexOf(event)
    if (at < 0) throw fail(`does not count \`${event}\` (its events are \`${events[1]}\`; was it written with --xtree-memory=full?)`)
    return values[at]!
  }
  return {
    totals: { allocations: value('totBk'), frees: value('totFdBk'), bytesAllocated: value('totB') },
    inUseAtExit: { bytes: value('curB'), blocks: value('curBk') },
  }
}

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

/** A frame of an allocation stack, as a massif-format xtree report describes it. */
export interface XtreeFrame {
  pc?: number
  object?: string
}

/** The events of a massif-format report that are counted by allocation stack (the freed ones are by free stack). */
const BY_ALLOCATION = ['curB', 'curBk', 'totB', 'totBk'] as const

const SPACE = 32
const N = 110
const LT = 60

/**
 * The heap summary of the blocks with chosen code anywhere on their allocation stack (a Node
 * addon's own calls, the templates and libraries it calls, its work on a thread pool), from a
 * massif-format xtree memory report (`xtmemory FILE.ms`, `--xtree-memory=full`).
 *
 * That format has a tree per event, each level grouping stacks by one frame, allocator's caller
 * first, a node's value the sum of its subtree's: a stack is counted at the first chosen frame on
 * its path from the root, and that node's subtree is skipped, so no block counts twice. Every
 * counter but the freed ones is kept by allocation stack, so the blocks freed of those allocated
 * with chosen code on the stack are their allocated blocks less their current ones, whoever freed
 * them (a realloc frees the old block, as memcheck counts it). Read as raw chunks: Node's report
 * is 50 to 100 MB; only node lines and the `<ip>`/`<obj>` lines of frames still undecided are
 * decoded.
 */
export async function parseXtreeMassif(input: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, holds: (frame: XtreeFrame) => boolean, source: string): Promise<HeapSummary> {
  const fail = (what: string): CaptureFailedError =>
    new CaptureFailedError(
      `heapspec: memcheck's massif-format xtree memory report (${source}) ${what}. ` +
        `valgrind stopped before writing it, or this valgrind writes another format; run with HEAPSPEC_DEBUG=1 to see its log.`,
    )
  const sums = new Map<string, number>()
  let event: string | undefined
  // Nodes deeper than this are in a counted subtree (-1: none is being skipped).
  let skipBelow = -1
  // A node described by an XML <frame> (memcheck run with --xml=yes) spans several lines.
  let pending: { value: number; depth: number; frame: XtreeFrame } | undefined
  const count = (value: number, depth: number): void => {
    sums.set(event!, sums.get(event!)! + value)
    skipBelow = depth
  }
  const onNode = (line: string, depth: number): void => {
    if (depth === 0) {
      // a tree's root: "n<children>: <total> <event> : <description>"
      const m = /^n\d+: \d+ (\S+)/.exec(line)
      if (!m) throw fail(`has a tree root heapspec cannot read (\`${line}\`)`)
      event = m[1]!
      sums.set(event, 0)
      skipBelow = -1
      return
    }
    if (skipBelow >= 0 && depth > skipBelow) return
    skipBelow = -1
    const m = /^ *n\d+: (\d+) (.*)$/.exec(line)
    if (!m || event === undefined) throw fail(`has a node heapspec cannot read (\`${line}\`)`)
    const value = Number(m[1])
    const what = m[2]!
    if (what === '<frame>') pending = { value, depth, frame: {} }
    else if (what.startsWith('0x') && holds({ pc: parseInt(what.slice(2), 16) })) count(value, depth)
    // else "in N places below massif's threshold": zeros, with no frame
  }
  const onFrameLine = (line: string): void => {
    const frame = pending!.frame
    const ip = /^\s*<ip>0x([0-9A-Fa-f]+)<\/ip>/.exec(line)
    if (ip) frame.pc = parseInt(ip[1]!, 16)
    const obj = /^\s*<obj>(.*)<\/obj>/.exec(line)
    if (obj) frame.object = unescapeXml(obj[1]!)
    if (!/^\s*<\/frame>/.test(line)) return
    const { value, depth } = pending!
    pending = undefined
    if (holds(frame)) count(value, depth)
  }
  let carry: Buffer = Buffer.alloc(0)
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const buffer = carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes
    let at = 0
    for (let end = buffer.indexOf(10, at); end >= 0; at = end + 1, end = buffer.indexOf(10, at)) {
      let first = at
      while (first < end && buffer[first] === SPACE) first++
      if (buffer[first] === N) {
        // a node line: decoded unless it is inside a counted subtree
        const depth = first - at
        if (pending) throw fail(`has a node inside a frame's description (\`${buffer.toString('utf8', at, end)}\`)`)
        if (depth === 0 || skipBelow < 0 || depth <= skipBelow) onNode(buffer.toString('utf8', at, end), depth)
      } else if (pending && buffer[first] === LT) {
        onFrameLine(buffer.toString('utf8', at, end))
      }
    }
    carry = buffer.subarray(at)
  }
  if (carry.length > 0) {
    let first = 0
    while (first < carry.length && carry[first] === SPACE) first++
    if (carry[first] === N) onNode(carry.toString('utf8'), first)
    else if (pending) onFrameLine(carry.toString('utf8'))
  }
  const value = (name: (typeof BY_ALLOCATION)[number]): number => {
    const sum = sums.get(name)
    if (sum === undefined) throw fail(`has no \`${name}\` tree (was it written with --xtree-memory=full?)`)
    return sum
  }
  const allocated = value('totBk')
  return {
    totals: { allocations: allocated, frees: allocated - value('curBk'), bytesAllocated: value('totB') },
    inUseAtExit: { bytes: value('curB'), blocks: value('curBk') },
  }
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos);/g, (_m, name: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[name]!)
}

import { CaptureFailedError } from '../../errors.js'
import type { Frame, LeakKind } from '../../model/types.js'

/** One live block, as memcheck's `block_list` names it. */
export interface ListedBlock {
  address: number
  size: number
}

/** One loss record of a leak search, with its blocks. */
export interface ListedRecord {
  /** The record's number in this leak search (`loss record N of M`). */
  number: number
  kind: LeakKind
  /** The allocation stack as return addresses after memcheck's own allocator frames: `0x1091ae,0x109216,...`. */
  stack: string
  /** memcheck showed the record in a full leak search: it is not suppressed (always true after a summary search). */
  shown: boolean
  blocks: ListedBlock[]
  /** The stack's frames as the log names them (file names without directories), for a record memcheck's XML never lists. */
  frames?: Frame[]
  /** The allocator memcheck's replacement frame names (`calloc`, `operator new(unsigned long)`). */
  allocator?: string | null
}

/** A log frame's text, `fn (file.c:12)`, `fn (in /lib/obj.so)` or `???`, as a frame. */
export function logFrame(text: string, pc: string): Frame {
  const m = /^(.*?)(?: \((?:in (.*)|(.*):(\d+))\))?$/.exec(text)!
  const fn = m[1] === '???' || m[1] === '' ? null : m[1]!
  return { fn, file: m[3] ?? null, line: m[4] ? Number(m[4]) : null, object: m[2] ?? null, pc }
}

/** Every heap block memcheck knew at one moment, grouped in its loss records. */
export interface BlockListing {
  records: ListedRecord[]
}

const KINDS: Record<string, LeakKind> = {
  'definitely lost': 'definite',
  'indirectly lost': 'indirect',
  'possibly lost': 'possible',
  'still reachable': 'reachable',
}

/**
 * A loss record's first line. The optional `(+N)`-style groups are the deltas memcheck adds after an
 * earlier leak search; the first count of blocks is the record's own (direct) blocks.
 */
const HEADER =
  /^[\d,]+(?: \([+-][\d,]+\))?(?: \([\d,]+(?: \([+-][\d,]+\))? direct, [\d,]+(?: \([+-][\d,]+\))? indirect\))? bytes in ([\d,]+)(?: \([+-][\d,]+\))? blocks are (definitely lost|indirectly lost|possibly lost|still reachable) in loss record ([\d,]+) of [\d,]+$/

const FRAME = /^ +(?:at|by) (0x[0-9A-Fa-f]+): (.*)$/

/** A top-level block; the indented ones under it are blocks it makes indirectly lost, listed again under their own record. */
const BLOCK = /^0x([0-9A-Fa-f]+)\[(\d+)\]/

/** valgrind's replacement allocator: a stack starts at its caller, as in the XML reader. */
const REPLACEMENT = /\(in [^)]*\/vgpreload_[^)]*\)$|\(vg_replace_malloc\.c:\d+\)$/

/** memcheck's answer when the heap holds no block at all. */
const EMPTY = [/^All heap blocks were freed -- no leaks are possible$/, /^Can't print block list : no valid leak search result$/, /^invalid loss record nr$/]

/** A log line without valgrind's `==PID== ` prefix. */
export function stripPid(line: string): string {
  return line.replace(/^==\d+== ?/, '')
}

/** A loss record as a full leak search shows it: its number and allocation stack. */
export interface ShownRecord {
  number: number
  /** Return addresses after memcheck's own allocator frames, innermost first: the first is the allocator's caller. */
  pcs: number[]
}

/**
 * The loss records a full leak search printed (`leak_check full`, log lines), each with its
 * allocation stack: what the host needs to pick the records worth a `block_list`.
 */
export function parseShownRecords(shown: string[]): ShownRecord[] {
  const records: ShownRecord[] = []
  let current: (ShownRecord & { replacement: boolean }) | undefined
  for (const raw of shown) {
    const line = stripPid(raw)
    const header = HEADER.exec(line)
    if (header) {
      current = { number: Number(header[3]!.replaceAll(',', '')), pcs: [], replacement: true }
      records.push(current)
      continue
    }
    const frame = current && FRAME.exec(line)
    if (!current || !frame) {
      current = undefined // a blank line or the summary: the record's stack has ended
      continue
    }
    if (current.replacement && REPLACEMENT.test(frame[2]!)) continue
    current.replacement = false
    current.pcs.push(parseInt(frame[1]!, 16))
  }
  return records.map(({ number, pcs }) => ({ number, pcs }))
}

/**
 * Reads one listing: what `leak_check` printed (`shown`, only read for a full search) and what
 * `block_list` printed after it (`blocks`), both as log lines. `full` tells whether the leak search
 * showed every unsuppressed record, so a record it did not show is a suppressed one.
 */
export function parseBlockListing(shown: string[], blocks: string[], full: boolean, source: string): BlockListing {
  const fail = (line: string, what: string): CaptureFailedError =>
    new CaptureFailedError(
      `heapspec: memcheck's block listing (${source}) has ${what}: \`${line}\`. heapspec reads the block_list output of valgrind 3.19 or later; run with HEAPSPEC_DEBUG=1 to see valgrind's log.`,
    )
  const shownNumbers = new Set<number>()
  if (full) {
    for (const raw of shown) {
      const m = HEADER.exec(stripPid(raw))
      if (m) shownNumbers.add(Number(m[3]!.replaceAll(',', '')))
    }
  }
  const records: ListedRecord[] = []
  let current: (ListedRecord & { expected: number; inStack: boolean; pcs: string[]; replacement: boolean }) | undefined
  const close = (): void => {
    if (!current) return
    if (current.blocks.length !== current.expected) {
      throw fail(`loss record ${current.number}`, `${current.blocks.length} blocks under a record of ${current.expected}`)
    }
    const { expected: _e, inStack: _s, pcs: _p, replacement: _r, ...record } = current
    records.push(record)
    current = undefined
  }
  for (const raw of blocks) {
    const line = stripPid(raw)
    if (line.trim() === '' || EMPTY.some((re) => re.test(line))) continue
    const header = HEADER.exec(line)
    if (header) {
      close()
      const number = Number(header[3]!.replaceAll(',', ''))
      current = {
        number,
        kind: KINDS[header[2]!]!,
        stack: '',
        shown: !full || shownNumbers.has(number),
        blocks: [],
        expected: Number(header[1]!.replaceAll(',', '')),
        frames: [],
        allocator: null,
        inStack: true,
        pcs: [],
        replacement: true,
      }
      continue
    }
    if (!current) throw fail(line, 'a line before any loss record')
    const frame = FRAME.exec(line)
    if (frame && current.inStack) {
      // Leading frames in valgrind's allocator are dropped; any later one is the program's.
      if (current.replacement && REPLACEMENT.test(frame[2]!)) {
        current.allocator = logFrame(frame[2]!, frame[1]!).fn
        continue
      }
      current.replacement = false
      current.pcs.push(frame[1]!.toLowerCase())
      current.stack = current.pcs.join(',')
      current.frames!.push(logFrame(frame[2]!, frame[1]!.toLowerCase()))
      continue
    }
    const block = BLOCK.exec(line)
    if (block) {
      current.inStack = false
      current.blocks.push({ address: parseInt(block[1]!, 16), size: Number(block[2]) })
      continue
    }
    if (/^ +0x[0-9A-Fa-f]+\[\d+\]/.test(line)) continue
    throw fail(line, 'a line heapspec cannot read')
  }
  close()
  return { records }
}

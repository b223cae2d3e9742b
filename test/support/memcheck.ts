import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { LEAK_KINDS, type Amount, type HeapTotals, type LeakKind } from '../../src/model/types.js'

/** What plain memcheck says of a command: the reference every heapspec figure is held to. */
export interface MemcheckVerdict {
  totals: HeapTotals
  leakSummary: Record<LeakKind, Amount>
  exitCode: number | undefined
  signal: string | undefined
  stdout: string
  /** Its loss records, as its text report lists them. */
  records: MemcheckRecord[]
  /** The forks memcheck checked at their end (those that did not exec another program), each under its own pid. */
  forks: MemcheckFork[]
}

/** A fork of the program that memcheck checked at its end: its report, apart from the program's. */
export interface MemcheckFork {
  pid: number
  leakSummary: Record<LeakKind, Amount>
  records: MemcheckRecord[]
}

/** One of memcheck's loss records: its direct bytes and blocks, and its stack as printed. */
export interface MemcheckRecord {
  kind: LeakKind
  bytes: number
  blocks: number
  /** `fn (file:line)` or `fn (in /object)`, allocator's caller first (memcheck's own replacement frame left out). */
  frames: string[]
}

const KINDS_BY_LABEL: Record<string, LeakKind> = {
  'definitely lost': 'definite',
  'indirectly lost': 'indirect',
  'possibly lost': 'possible',
  'still reachable': 'reachable',
}

/** The loss records of memcheck's text log (lines prefixed `==PID== `). */
export function lossRecords(log: string): MemcheckRecord[] {
  const records: MemcheckRecord[] = []
  let current: MemcheckRecord | undefined
  for (const raw of log.split('\n')) {
    const line = raw.replace(/^==\d+== ?/, '')
    const head = /^([\d,]+)(?: \(([\d,]+) direct, [\d,]+ indirect\))? bytes in ([\d,]+) blocks are (definitely lost|indirectly lost|possibly lost|still reachable) in loss record/.exec(line)
    if (head) {
      current = { kind: KINDS_BY_LABEL[head[4]!]!, bytes: number(head[2] ?? head[1]!), blocks: number(head[3]!), frames: [] }
      records.push(current)
      continue
    }
    const frame = current && /^\s+(?:at|by) 0x[0-9A-F]+: (.*)$/.exec(line)
    if (frame) {
      if (!/vgpreload_memcheck/.test(frame[1]!)) current!.frames.push(frame[1]!)
    } else {
      current = undefined
    }
  }
  return records
}

const LABELS: Record<LeakKind, string> = {
  definite: 'definitely lost',
  indirect: 'indirectly lost',
  possible: 'possibly lost',
  reachable: 'still reachable',
}

const number = (text: string): number => Number(text.replaceAll(',', ''))

/** The lines of memcheck's log by the process each is of (`==PID==`), the process it started first. */
function byProcess(log: string): Map<number, string> {
  const lines = new Map<number, string[]>()
  for (const line of log.split('\n')) {
    const pid = /^==(\d+)==/.exec(line)?.[1]
    if (pid === undefined) continue
    if (!lines.has(Number(pid))) lines.set(Number(pid), [])
    lines.get(Number(pid))!.push(line)
  }
  return new Map([...lines].map(([pid, text]) => [pid, text.join('\n')]))
}

/** The leak summary of one process's report. */
function leakSummaryOf(text: string): Record<LeakKind, Amount> {
  return Object.fromEntries(
    LEAK_KINDS.map((kind) => {
      const m = new RegExp(`${LABELS[kind]}: ([\\d,]+) bytes in ([\\d,]+) blocks`).exec(text)
      return [kind, m ? { bytes: number(m[1]!), blocks: number(m[2]!) } : { bytes: 0, blocks: 0 }]
    }),
  ) as Record<LeakKind, Amount>
}

/**
 * Where memcheck places the client's mappings, the heap among them: above 4 GiB, as a native
 * program's heap is. At memcheck's default (64 MiB) the heap lies where 32-bit numbers fall, and
 * its scan takes any such number inside a block for a pointer: ld.so keeps each library's inode
 * number in its link map, so on a machine whose libc has an inode there a lost block reads as
 * possibly lost (seen in CI on debugee/scale/many-sites). The reference must not depend on the
 * machine's inode numbers; debugee/field/integers shows the difference on every machine.
 */
const REFERENCE_LAYOUT = '--aspace-minaddr=0x100000000'

/**
 * Runs `command` under `valgrind --leak-check=full --show-leak-kinds=all`, as a user checks a
 * program by hand (its mappings above 4 GiB: REFERENCE_LAYOUT), and reads the figures of its text
 * report (its log goes to a file, so the program's own output is its own).
 */
export async function memcheck(command: string[], options: { input?: string; cwd?: string; valgrindArgs?: string[] } = {}): Promise<MemcheckVerdict> {
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-memcheck-'))
  try {
    const log = join(dir, 'memcheck.log')
    const result = await execa('valgrind', ['--leak-check=full', '--show-leak-kinds=all', REFERENCE_LAYOUT, `--log-file=${log}`, ...(options.valgrindArgs ?? []), ...command], {
      reject: false,
      input: options.input ?? '',
      cwd: options.cwd,
      stripFinalNewline: false,
    })
    // the program's own report; a fork memcheck checked writes its own, under its pid, in the same log
    const [started, ...others] = byProcess(readFileSync(log, 'utf8'))
    const text = started?.[1] ?? ''
    const usage = /total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated/.exec(text)
    if (!usage) throw new Error(`memcheck wrote no heap summary for ${command.join(' ')}:\n${text}`)
    return {
      totals: { allocations: number(usage[1]!), frees: number(usage[2]!), bytesAllocated: number(usage[3]!) },
      leakSummary: leakSummaryOf(text),
      exitCode: result.exitCode,
      signal: result.signal,
      stdout: String(result.stdout),
      records: lossRecords(text),
      forks: others.filter(([, fork]) => /HEAP SUMMARY:/.test(fork)).map(([pid, fork]) => ({ pid, leakSummary: leakSummaryOf(fork), records: lossRecords(fork) })),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One error of plain memcheck's text report: its words, where it happened, its aux story, how often. */
export interface MemcheckError {
  what: string
  /** The first frame outside valgrind's replacement code, as `file:line`. */
  at: string
  /** The lines after the stack ("Address 0x... is 8 bytes after a block of size 32 alloc'd", "Block was alloc'd at"). */
  aux: string[]
  count: number
}

/**
 * Runs `command` under plain memcheck (`-v`, so every error is listed again with its count at the
 * end) and reads its errors from the text report, in the order memcheck found them: a reader of
 * memcheck's own words, apart from heapspec's XML reader.
 */
export async function memcheckErrors(command: string[], options: { cwd?: string } = {}): Promise<MemcheckError[]> {
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-memcheck-'))
  try {
    const log = join(dir, 'memcheck.log')
    await execa('valgrind', ['-v', `--log-file=${log}`, ...command], { reject: false, cwd: options.cwd, input: '' })
    const lines = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => !/^--\d+--/.test(l)) // -v's own chatter
      .map((l) => l.replace(/^==\d+== ?/, ''))
    // An error: its words, its stack, then its aux story; blank lines apart. A "Thread N:" line
    // comes first when another thread made the one before.
    const read = (block: string[]): Omit<MemcheckError, 'count'> | undefined => {
      const lines = block.filter((l) => !/^Thread \d+:$/.test(l))
      // -v's own messages may precede it without a blank line
      const start = lines.findIndex((l, i) => !/^\s/.test(l) && /^\s+at 0x/.test(lines[i + 1] ?? ''))
      const body = start < 0 ? [] : lines.slice(start)
      if (body.length < 2 || /^\s/.test(body[0]!) || !/^\s+at 0x/.test(body[1]!)) return undefined
      const isFrame = (l: string): boolean => /^\s+(at|by) 0x/.test(l)
      const first = body.slice(1).find((l) => isFrame(l) && !/vgpreload_|vg_replace_malloc\.c/.test(l)) ?? ''
      const at = /\(([^():]+):(\d+)\)$/.exec(first)
      return { what: body[0]!.trim(), at: at ? `${at[1]}:${at[2]}` : '?', aux: body.slice(1).filter((l) => !isFrame(l)).map((l) => l.trim()) }
    }
    const key = (e: Omit<MemcheckError, 'count'>): string => JSON.stringify([e.what, e.at, e.aux])
    const blocks: string[][] = [[]]
    for (const line of lines) {
      if (line.trim() === '') blocks.push([])
      else blocks.at(-1)!.push(line)
    }
    const summary = blocks.findIndex((b) => b[0] === 'HEAP SUMMARY:')
    // -v lists every error again at the end with its count: "N errors in context I of M:" first.
    const counts = new Map<string, number>()
    for (const block of blocks.slice(summary)) {
      const m = /^(\d+) errors? in context \d+ of \d+:$/.exec(block[0] ?? '')
      const error = m ? read(block.slice(1)) : undefined
      if (error) counts.set(key(error), Number(m![1]))
    }
    const errors: MemcheckError[] = []
    for (const block of blocks.slice(0, summary)) {
      const error = read(block)
      if (error) errors.push({ ...error, count: counts.get(key(error)) ?? 0 })
    }
    return errors
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

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

/**
 * Runs `command` under `valgrind --leak-check=full --show-leak-kinds=all`, as a user checks a
 * program by hand, and reads the figures of its text report (its log goes to a file, so the
 * program's own output is its own).
 */
export async function memcheck(command: string[], options: { input?: string; cwd?: string; valgrindArgs?: string[] } = {}): Promise<MemcheckVerdict> {
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-memcheck-'))
  try {
    const log = join(dir, 'memcheck.log')
    const result = await execa('valgrind', ['--leak-check=full', '--show-leak-kinds=all', `--log-file=${log}`, ...(options.valgrindArgs ?? []), ...command], {
      reject: false,
      input: options.input ?? '',
      cwd: options.cwd,
      stripFinalNewline: false,
    })
    const text = readFileSync(log, 'utf8')
    const usage = /total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated/.exec(text)
    if (!usage) throw new Error(`memcheck wrote no heap summary for ${command.join(' ')}:\n${text}`)
    const leakSummary = Object.fromEntries(
      LEAK_KINDS.map((kind) => {
        const m = new RegExp(`${LABELS[kind]}: ([\\d,]+) bytes in ([\\d,]+) blocks`).exec(text)
        return [kind, m ? { bytes: number(m[1]!), blocks: number(m[2]!) } : { bytes: 0, blocks: 0 }]
      }),
    ) as Record<LeakKind, Amount>
    return {
      totals: { allocations: number(usage[1]!), frees: number(usage[2]!), bytesAllocated: number(usage[3]!) },
      leakSummary,
      exitCode: result.exitCode,
      signal: result.signal,
      stdout: String(result.stdout),
      records: lossRecords(text),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

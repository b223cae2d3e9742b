import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/** The repository root, for paths to debugee/ programs. */
export const ROOT = join(import.meta.dirname, '..', '..')

/** A built debugee program. */
export function program(name: string): string {
  return join(ROOT, 'debugee', 'build', name)
}

/** memcheck's figures for one debugee program, recorded in debugee/expected.json. */
export interface Expected {
  allocations: number
  frees: number
  bytesAllocated: number
  inUseAtExit: { bytes: number; blocks: number }
  definite: { bytes: number; blocks: number }
  indirect: { bytes: number; blocks: number }
  possible: { bytes: number; blocks: number }
  reachable: { bytes: number; blocks: number }
  exitCode: number | null
  signal: string | null
  sites: { kind: string; bytes: number; blocks: number; fn: string; file: string; line: number }[]
}

/** Every program of debugee/expected.json with its expected figures. */
export function expectations(): [string, Expected][] {
  return Object.entries(JSON.parse(readFileSync(join(ROOT, 'debugee', 'expected.json'), 'utf8')) as Record<string, Expected>)
}

/** Pids of processes whose command line mentions `needle` (left-behind gdb, valgrind or programs). */
export function processesMentioning(needle: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ')
      if (cmdline.includes(needle)) found.push(Number(entry))
    } catch {
      // ended while we looked
    }
  }
  return found
}

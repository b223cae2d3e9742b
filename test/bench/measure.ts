/** What the benchmark scripts share: timing a command with its peak memory. */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'

/** The repository root (the scripts run from dist/test/bench). */
export const ROOT = join(import.meta.dirname, '..', '..', '..')
const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const TIME = '/usr/bin/time'

/** Wall seconds `fn` takes. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - started) / 1e9
}

/** One timed run of a command. */
export interface Measured {
  seconds: number
  /** Peak resident memory of the measured process, in MB (GNU time's %M), when known. */
  mb: number | undefined
}

/** Runs a command under GNU time when the machine has it: wall seconds and peak memory. */
export async function measure(command: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Measured & { stderr: string }> {
  const started = process.hrtime.bigint()
  if (!existsSync(TIME)) {
    const r = await execa(command[0]!, command.slice(1), { ...options, reject: false })
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, mb: undefined, stderr: String(r.stderr) }
  }
  const r = await execa(TIME, ['-f', 'heapspec-bench-rss %M', ...command], { ...options, reject: false })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const stderr = String(r.stderr)
  const rss = /heapspec-bench-rss (\d+)/.exec(stderr)
  return { seconds, mb: rss ? Number(rss[1]) / 1024 : undefined, stderr }
}

/** The figures of a heapspec run the benchmarks check. */
export interface BenchRun {
  leakSummary: Record<string, { bytes: number; blocks: number }>
  tests: unknown[]
  totals: { allocations: number; frees: number; bytesAllocated: number }
}

/** heapspec's run JSON of `command` under `backend`, timed. */
export async function heapspec(backend: string, command: string[], cwd = ROOT): Promise<Measured & { run: BenchRun }> {
  const json = join(mkdtempSync(join(tmpdir(), 'heapspec-bench-')), 'run.json')
  const m = await measure(['node', CLI, 'run', '--backend', backend, '--json', json, '--', ...command], { cwd })
  return { ...m, run: JSON.parse(readFileSync(json, 'utf8')) as BenchRun }
}

/** Stops the benchmark where a heapspec figure is not the one it must be. */
export function check(what: string, got: unknown, want: unknown): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`bench: ${what}: heapspec says ${JSON.stringify(got)}, not ${JSON.stringify(want)}`)
}

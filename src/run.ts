import { HeapspecError } from './errors.js'
import type { CaptureBackend } from './capture/backend.js'
import { GdbBackend } from './capture/gdb/backend.js'
import { ValgrindBackend } from './capture/valgrind/backend.js'
import { inspectProgram, resolveProgram } from './capture/program.js'
import { normalizeOptions, type BackendName, type RunOptions } from './options.js'
import type { HeapTotals, LeakRecord, LeakSummary, RunJson, TestCaseSummary } from './model/types.js'

/** The backend objects, by name. */
export function backendFor(name: BackendName): CaptureBackend {
  return name === 'valgrind' ? new ValgrindBackend() : new GdbBackend()
}

/** One test case's share of a run: what the matchers check on `run.test(name)`. */
export interface TestCaseRun {
  readonly name: string
  readonly totals: HeapTotals
  readonly leakSummary: LeakSummary
  readonly leaks: LeakRecord[]
}

/** A finished capture: the run JSON, with accessors for its test cases. */
export class HeapRun {
  /** The program's stdout and stderr, when captured (`stdio: 'pipe'`). */
  constructor(
    readonly json: RunJson,
    readonly stdout = '',
    readonly stderr = '',
  ) {}

  get leaks(): LeakRecord[] {
    return this.json.leaks
  }

  get tests(): TestCaseSummary[] {
    return this.json.tests
  }

  /** One test case's slice; throws, listing the known names, when there is no such test case. */
  test(name: string): TestCaseRun {
    const summary = this.json.tests.find((t) => t.name === name)
    if (!summary) {
      const known = this.json.tests.map((t) => `"${t.name}"`).join(', ') || 'none (add heapspec.h markers or use the tests option)'
      throw new HeapspecError(`heapspec: no test case "${name}" in this run. Known test cases: ${known}.`)
    }
    return {
      name,
      totals: { allocations: summary.allocations, frees: summary.frees, bytesAllocated: summary.bytesAllocated },
      leakSummary: summary.leakSummary,
      leaks: this.json.leaks.filter((l) => l.test === name),
    }
  }

  toJSON(): RunJson {
    return this.json
  }
}

/**
 * Runs a native program under a capture backend and returns its heap run.
 * @example const run = await runNative(['./build/tests'], { backend: 'gdb', tests: /^test_/ })
 */
export async function runNative(command: string[], options: RunOptions = {}): Promise<HeapRun> {
  const { backend: name, spec } = normalizeOptions(command, options)
  const program = resolveProgram(command[0]!, spec.cwd, spec.env)
  inspectProgram(program, command[0]!)
  const backend = backendFor(name)
  await backend.probe()
  const result = await backend.capture({ ...spec, command: [program, ...command.slice(1)] })
  return new HeapRun(result.run, result.stdout, result.stderr)
}

import { CannotStartError, HeapspecError } from './errors.js'
import type { CaptureBackend } from './capture/backend.js'
import { GdbBackend } from './capture/gdb/backend.js'
import { PreloadBackend, preloadObstacle } from './capture/preload/backend.js'
import { ValgrindBackend } from './capture/valgrind/backend.js'
import { inspectProgram, resolveProgram } from './capture/program.js'
import { testFunctionNames } from './capture/test-functions.js'
import { announceCaptureStart, announceRun } from './run-events.js'
import { normalizeOptions, type BackendName, type CaptureBackendName, type RunOptions } from './options.js'
import type { Amount, HeapTotals, LeakRecord, LeakSummary, MemoryError, RunJson, TestCasePeak, TestCaseSummary } from './model/types.js'
import { testCaseErrors, testCaseRecords } from './model/run-records.js'

/** The backend objects, by name. */
export function backendFor(name: CaptureBackendName): CaptureBackend {
  return name === 'valgrind' ? new ValgrindBackend() : name === 'preload' ? new PreloadBackend() : new GdbBackend()
}

/**
 * The backend for a run, probed: the one asked for, or for `auto` the fastest that can run this
 * program. preload runs near native speed, for test cases of every kind and `objects` alike, but
 * not a program that ignores LD_PRELOAD (setuid, setgid) or where no C compiler builds it; gdb
 * stops at every event; valgrind is last (slowest to start, and needs no compiler or ptrace).
 */
export async function chooseBackend(name: BackendName, program: string): Promise<CaptureBackend> {
  const candidates: CaptureBackendName[] = ['preload', 'gdb', 'valgrind']
  if (name !== 'auto') {
    const backend = backendFor(name)
    try {
      await backend.probe()
    } catch (error) {
      if (!(error instanceof CannotStartError)) throw error
      const others = await runnable(candidates.filter((c) => c !== name))
      throw new CannotStartError(withAlternatives(error.message, others), { cause: error })
    }
    return backend
  }
  const reasons: string[] = []
  for (const candidate of candidates) {
    if (candidate === 'preload' && preloadObstacle(program)) continue
    const backend = backendFor(candidate)
    try {
      await backend.probe()
      return backend
    } catch (error) {
      if (!(error instanceof CannotStartError)) throw error
      reasons.push(withAlternatives(error.message, []).replace(/^heapspec: /, ''))
    }
  }
  throw new CannotStartError(`heapspec: no backend can run ${program}: ${reasons.join(' ')}`)
}

/** The backends among `names` whose probe passes here. */
async function runnable(names: CaptureBackendName[]): Promise<CaptureBackendName[]> {
  const ok = await Promise.all(names.map((n) => backendFor(n).probe().then(() => true, () => false)))
  return names.filter((_, i) => ok[i])
}

/**
 * A backend's "cannot start" line with its "or use --backend X" advice kept to backends that can
 * run here: each backend's own line names the others, and with none of them installed that advice
 * would send the user from one missing backend to the next.
 */
export function withAlternatives(message: string, others: readonly CaptureBackendName[]): string {
  const advice = /(,? or use|\.? Use) --backend \w+(?: or --backend \w+)*\.$/
  if (!advice.test(message)) return message
  if (others.length > 0) {
    return message.replace(advice, (_, lead: string) => `${lead} ${others.map((o) => `--backend ${o}`).join(' or ')}.`)
  }
  return message.replace(advice, '.')
}

/** One test case's share of a run: what the matchers check on `run.test(name)`. */
export interface TestCaseRun {
  readonly name: string
  readonly totals: HeapTotals
  readonly leakSummary: LeakSummary
  /** The loss records it answers for: its blocks lost at its end or at exit. */
  readonly leaks: LeakRecord[]
  /** Its blocks suppressions kept out of `leakSummary` (heapspec's defaults, the user's files). */
  readonly suppressed: Amount
  /** The memory errors made while it ran (invalid frees, reads, writes, ...), each once with its count there. */
  readonly errors: MemoryError[]
  /** Why heapspec could not see the whole run, when it could not: the test case's figures may be short. */
  readonly incomplete?: string
  /** Its high-water marks of live heap, where the backend keeps them (preload, gdb). */
  readonly peak?: TestCasePeak
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

  /** The memory errors of the whole run, each with the test case that made it first. */
  get errors(): MemoryError[] {
    return this.json.errors
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
      leaks: testCaseRecords(this.json, summary),
      suppressed: summary.suppressed ?? { bytes: 0, blocks: 0 },
      errors: testCaseErrors(this.json, summary),
      ...(this.json.incomplete ? { incomplete: this.json.incomplete } : {}),
      ...(summary.peak ? { peak: summary.peak } : {}),
    }
  }

  toJSON(): RunJson {
    return this.json
  }
}

/**
 * Runs a native program under a capture backend and returns its heap run. The capture and the
 * run are announced to the test framework's recorder (run-events.ts), so reporters see them.
 * @example const run = await runNative(['./build/tests'], { backend: 'gdb', tests: /^test_/ })
 */
export async function runNative(command: string[], options: RunOptions = {}): Promise<HeapRun> {
  const { backend: name, spec } = normalizeOptions(command, options)
  const program = resolveProgram(command[0]!, spec.cwd, spec.env)
  inspectProgram(program, command[0]!)
  // matched here, in JavaScript, whatever the backend: a pattern that matches nothing fails before anything runs
  const testFunctions = spec.tests ? await testFunctionNames(program, spec.tests, command[0]) : undefined
  const ended = announceCaptureStart(command, options.backend)
  try {
    const backend = await chooseBackend(name, program)
    const result = await backend.capture({ ...spec, testFunctions, command: [program, ...command.slice(1)] })
    announceRun(result.run)
    return new HeapRun(result.run, result.stdout, result.stderr)
  } finally {
    ended()
  }
}

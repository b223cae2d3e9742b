import type { Suppression } from '../model/suppressions.js'
import type { RunJson } from '../model/types.js'

/** What a backend needs to run one program. Built by `normalizeOptions`, so every field is valid. */
export interface CaptureSpec {
  /** Program (resolved to a path) and its arguments. */
  command: string[]
  /** The command as the user gave it, for reports. */
  displayCommand: string[]
  cwd: string
  env: Record<string, string | undefined>
  /** Stop the program after this many milliseconds; `undefined` for no limit. */
  timeoutMs: number | undefined
  /** Functions whose names match are test cases (entry to return). */
  tests: RegExp | undefined
  /** The program's functions `tests` matched, by name (see test-functions.ts); found by the backend when absent. */
  testFunctions?: string[]
  /**
   * Observe only the allocations these loaded objects make (matched against their paths), as for
   * a Node addon inside Node; empty for every allocation of the program.
   */
  objects: RegExp[]
  /** Where the program's own stdout/stderr go: the terminal, or captured into the result. */
  stdio: 'inherit' | 'pipe'
  /** Write every allocation event with its stack here (GDB backend). */
  memdumpFile: string | undefined
  /** The user's memcheck suppression files (absolute paths); heapspec's default file is added by each backend. */
  suppressions: string[]
  /** The suppressions of the default file and the user's, parsed: what preload and gdb apply themselves. */
  suppressionRules: Suppression[]
  /** Every loss record carries a ready-to-paste memcheck suppression. */
  genSuppressions: boolean
  /** Extra memcheck options (Valgrind backend). */
  valgrindArgs: string[]
  /** Aborting stops the capture and every process it started. */
  signal: AbortSignal | undefined
  /** Aborting stops the program as the timeout does: what was captured so far is reported. */
  stop?: AbortSignal | undefined
  /** Print the debugger's transcript to stderr. */
  debug: boolean
}

/** What a capture delivers: the run, and the program's output when it was captured. */
export interface CaptureResult {
  run: RunJson
  stdout: string
  stderr: string
}

/** A capture backend: one debugger, behind one small interface. */
export interface CaptureBackend {
  readonly name: string
  /** Throws `CannotStartError` when the backend's tool is missing or unusable here. */
  probe(): Promise<void>
  /** Runs the program to its end under the backend and delivers the run. */
  capture(spec: CaptureSpec): Promise<CaptureResult>
}

/** The four leak kinds, as memcheck defines them. */
export const LEAK_KINDS = ['definite', 'indirect', 'possible', 'reachable'] as const

/** One of memcheck's leak kinds. */
export type LeakKind = (typeof LEAK_KINDS)[number]

/** Bytes and blocks, the unit every leak figure is counted in. */
export interface Amount {
  bytes: number
  blocks: number
}

/** Leaked amounts by kind. */
export type LeakSummary = Record<LeakKind, Amount>

/** One frame of an allocation stack, resolved to a function and (with debug info) a source line. */
export interface Frame {
  /** Function name, demangled; `null` when the address has no symbol. */
  fn: string | null
  /** Source file as the debug info names it (relative to the working directory when inside it). */
  file: string | null
  line: number | null
  /** The loaded object (program or shared library) holding the code. */
  object: string | null
  /** The raw program counter (a return address), as hex. Not part of the schema's contract. */
  pc?: string
}

/** One loss record: the blocks of one kind allocated from one stack. */
export interface LeakRecord {
  kind: LeakKind
  bytes: number
  blocks: number
  /** The test case during which the blocks were allocated, or `null` outside any test case. */
  test: string | null
  /** The allocation stack, caller of the allocator first. */
  stack: Frame[]
  /** A ready-to-paste memcheck suppression, when the backend can produce one. */
  suppression?: string
}

/**
 * A memory error's kind, memcheck's names in kebab case: `invalid-free` (a double free, a free of
 * an interior or foreign pointer), `mismatched-free` (`malloc`/`delete`, `new`/`free`,
 * `new[]`/`delete`), `invalid-read`, `invalid-write`, `uninitialised-value`, `overlap`, ...
 */
export type MemoryErrorKind = string

/** A memory error (invalid free, invalid read, ...), as a backend reports it. */
export interface MemoryError {
  kind: MemoryErrorKind
  /** memcheck's words for it: "Invalid free() / delete / delete[] / realloc()". */
  what?: string
  /** The test case running when the bad call was made, or `null` outside any test case. */
  test: string | null
  /** The bad call's stack, its caller first (the allocator's own frame left out). */
  stack: Frame[]
  /**
   * Other stacks, as memcheck attaches them: the address's story first ("Address 0x4a4f040 is 0
   * bytes inside a block of size 16 free'd", with the stack that freed it), then where the block
   * was allocated ("Block was alloc'd at").
   */
  auxStacks?: { what: string; stack: Frame[] }[]
  /**
   * How many times it happened (optional in schema 1): memcheck shows an error once and counts its
   * repeats. In the run's `errors`, every time; in a test case's `errors`, the times in that test case.
   */
  count?: number
}

/** One allocation site's blocks live at a peak. */
export interface PeakSite {
  bytes: number
  blocks: number
  /** The allocation stack, caller of the allocator first. */
  stack: Frame[]
}

/**
 * A test case's high-water marks of live heap, in bytes the program asked for (as memcheck and
 * massif count them; a realloc frees its old block before its new one counts). Optional in schema 1:
 * absent where the backend cannot know them exactly (valgrind).
 */
export interface TestCasePeak {
  /** The most bytes live at once in blocks the test case allocated, while it ran. */
  bytes: number
  /** The most bytes live at once in the whole heap (a fixture made before it too), while it ran. */
  heapBytes: number
  /** Where the test case's blocks live at the moment of `bytes` were allocated, biggest first (at most 10 sites). */
  sites: PeakSite[]
}

/** The run's high-water mark of live heap: the most bytes live at once in the whole heap (optional in schema 1). */
export interface RunPeak {
  bytes: number
  /** Where the blocks live at that moment were allocated, biggest first (at most 10 sites). */
  sites: PeakSite[]
}

/**
 * Live heap bytes over the run, sampled (optional in schema 1): time is the count of allocator
 * events so far (allocations and frees, as `totals` counts them), in at most 512 points.
 */
export interface HeapSeries {
  /** [event, bytes]: from this event to the next point's, the most bytes live at once. */
  points: [number, number][]
  /** Each test case's span, in events, in the order of `tests` (their index in it). */
  spans: { test: number; from: number; to: number }[]
}

/** Per-test-case figures. */
export interface TestCaseSummary {
  name: string
  allocations: number
  frees: number
  bytesAllocated: number
  /** What the test case answers for, by kind: its blocks lost at its end or at exit (suppressed ones left out). */
  leakSummary: LeakSummary
  /** Its own loss records, the same blocks as `leakSummary`, with their allocation stacks (optional in schema 1). */
  leaks?: LeakRecord[]
  /** Its blocks that suppressions (heapspec's defaults, the user's) kept out of `leakSummary` (optional in schema 1). */
  suppressed?: Amount
  /**
   * The memory errors made while it ran (optional in schema 1), each once with its `count` there;
   * an error it repeated after an earlier test case made it first is here too. Absent: the run's
   * `errors` whose `test` names it.
   */
  errors?: MemoryError[]
  /** Its high-water marks of live heap (optional in schema 1: not under valgrind). */
  peak?: TestCasePeak
}

/** How the program ended. */
export interface ProgramOutcome {
  command: string[]
  exitCode: number | null
  signal: string | null
  /** Set when heapspec stopped the program before its end: after `timeout` seconds, or when it was asked to stop (`stop`: the CLI's Ctrl-C or SIGTERM). */
  timedOut?: boolean
}

/** Allocation counts, counted the way memcheck counts them. */
export interface HeapTotals {
  allocations: number
  frees: number
  bytesAllocated: number
}

/** The run, schema 1: the one shape the API, the CLI and the reporters exchange. */
export interface RunJson {
  schema: 1
  backend: string
  program: ProgramOutcome
  totals: HeapTotals
  inUseAtExit: Amount
  leakSummary: LeakSummary
  /** Blocks in loss records that suppressions matched, as memcheck's `suppressed:` line counts them (optional in schema 1). */
  suppressed?: Amount
  leaks: LeakRecord[]
  tests: TestCaseSummary[]
  errors: MemoryError[]
  /** The whole run's high-water mark of live heap (optional in schema 1: not under valgrind). */
  peak?: RunPeak
  /** Live heap bytes over the run, for the HTML report's chart (optional in schema 1: not under valgrind). */
  heapSeries?: HeapSeries
  /**
   * Set when heapspec could not see the whole run (the program exec'd, ended by a raw exit system
   * call, was killed before its image): why. Such a run fails; it never reads as clean.
   */
  incomplete?: string
  /** Things the user should know that are not failures (marker misuse, truncated output). */
  warnings?: string[]
}

/** A fresh all-zero leak summary. */
export function emptyLeakSummary(): LeakSummary {
  return {
    definite: { bytes: 0, blocks: 0 },
    indirect: { bytes: 0, blocks: 0 },
    possible: { bytes: 0, blocks: 0 },
    reachable: { bytes: 0, blocks: 0 },
  }
}

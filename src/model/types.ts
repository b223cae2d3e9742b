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
}

/** How the program ended. */
export interface ProgramOutcome {
  command: string[]
  exitCode: number | null
  signal: string | null
  /** Set when heapspec stopped the program after `timeout` seconds. */
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

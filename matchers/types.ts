import type { Amount, LeakKind, MemoryErrorKind } from '../src/model/types.js'

/** Options of `toHaveNoLeaks`. */
export interface HaveNoLeaksOptions {
  /**
   * The leak kinds that fail.
   * @default ['definite', 'indirect', 'possible']
   * @example expect(run).toHaveNoLeaks({ kinds: ['definite'] })
   */
  kinds?: LeakKind[]
}

/** Options of `toHaveNoMemoryErrors`. */
export interface HaveNoMemoryErrorsOptions {
  /**
   * The memory error kinds that fail, memcheck's names in kebab case.
   * @default every kind
   * @example expect(run).toHaveNoMemoryErrors({ kinds: ['invalid-free', 'mismatched-free'] })
   */
  kinds?: MemoryErrorKind[]
}

/** Limits of `toLeakAtMost`: give at least one of `bytes` and `blocks`. */
export interface LeakLimits {
  /** Most bytes that may leak. @example { bytes: 1024 } */
  bytes?: number
  /** Most blocks that may leak. @example { blocks: 2 } */
  blocks?: number
  /**
   * The leak kinds counted.
   * @default ['definite', 'indirect', 'possible']
   */
  kinds?: LeakKind[]
}

/** Limits of `toAllocateAtMost`, over the allocation totals: give at least one. */
export interface AllocationLimits {
  /** Most allocation calls (malloc, calloc, realloc, memalign-family, C++ new). @example { allocations: 10 } */
  allocations?: number
  /** Most bytes allocated in total. @example { bytes: 4096 } */
  bytes?: number
}

/** Limits of `toPeakAtMost`, over the high-water marks of live heap: give at least one. */
export interface PeakLimits {
  /** Most bytes live at once: a test case's own blocks, or the whole heap for a run. @example { bytes: 1048576 } */
  bytes?: number
  /** Most bytes live at once in the whole heap while the test case ran (a fixture made before it too). @example { heapBytes: 2097152 } */
  heapBytes?: number
}

/** Options of `toMatchAllocationSnapshot`. */
export interface AllocationSnapshotOptions {
  /**
   * Pin the peak of live heap too (`peak: { bytes, heapBytes }`; a run's: `{ bytes }`). Not under
   * valgrind, which keeps no peak.
   * @default false
   * @example expect(run.test('parse_big')).toMatchAllocationSnapshot({ peak: true })
   */
  peak?: boolean
}

/** What `toMatchAllocationSnapshot` stores: the counts of a run or test case, by memcheck's rules. */
export interface AllocationSnapshot {
  allocations: number
  frees: number
  bytesAllocated: number
  leaked: { definite: Amount; indirect: Amount; possible: Amount }
  /** With `{ peak: true }`: the high-water marks (a run's has `bytes` only). */
  peak?: { bytes: number; heapBytes?: number }
}

/**
 * heapspec's matchers, as both Vitest's and Jest's `expect` declare them. `R` is what each
 * framework's matchers return; the received value is a `HeapRun`, `run.test(name)` or a run JSON.
 */
export interface HeapMatchers<R> {
  /**
   * No leaks of the failing kinds (by default definite, indirect and possible).
   * @example expect(run).toHaveNoLeaks()
   */
  toHaveNoLeaks(options?: HaveNoLeaksOptions): R
  /**
   * No memory errors of the failing kinds (by default every kind): invalid and mismatched frees,
   * invalid reads and writes, uninitialised values, overlapping copies, ...
   * @example expect(run.test('parse_big')).toHaveNoMemoryErrors()
   */
  toHaveNoMemoryErrors(options?: HaveNoMemoryErrorsOptions): R
  /**
   * Leaks of the failing kinds stay within the limits.
   * @example expect(run.test('parse_big')).toLeakAtMost({ bytes: 1024 })
   */
  toLeakAtMost(limits: LeakLimits): R
  /**
   * Allocation totals stay within the limits.
   * @example expect(run.test('parse_empty')).toAllocateAtMost({ allocations: 10 })
   */
  toAllocateAtMost(limits: AllocationLimits): R
  /**
   * The high-water mark of live heap stays within the limits; a failure names the sites live at the peak.
   * @example expect(run.test('parse_big')).toPeakAtMost({ bytes: 1024 * 1024 })
   */
  toPeakAtMost(limits: PeakLimits): R
  /**
   * The allocation counts match the framework's stored snapshot (written on first run, updated with -u).
   * @example expect(run.test('parse_big')).toMatchAllocationSnapshot()
   */
  toMatchAllocationSnapshot(hint?: string): R
  /**
   * The allocation counts, and with `{ peak: true }` the peak, match the stored snapshot.
   * @example expect(run.test('parse_big')).toMatchAllocationSnapshot({ peak: true })
   */
  toMatchAllocationSnapshot(options: AllocationSnapshotOptions, hint?: string): R
}

/** The part of Vitest's and Jest's matcher context heapspec's matchers read. */
export interface HeapMatcherContext {
  isNot?: boolean
}

/** What a matcher returns: `pass` before `.not`, the message built only when a failure is shown. */
export interface HeapMatcherResult {
  pass: boolean
  message: () => string
}

/** A matcher as `expect.extend` takes it, arguments unvalidated. */
export type HeapMatcherFn = (this: HeapMatcherContext, received: unknown, ...args: unknown[]) => HeapMatcherResult

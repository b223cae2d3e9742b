import type { LeakSummary, PeakSite, RunJson, TestCaseSummary } from '../../src/model/types.js'

const none = { bytes: 0, blocks: 0 }

/** A leak summary with the given kinds, the others zero. */
export const summary = (kinds: Partial<LeakSummary>): LeakSummary => ({ definite: none, indirect: none, possible: none, reachable: none, ...kinds })

/** Test case summaries without their loss records (checked apart, as sites), memory errors (the valgrind backend's) and peaks (test/e2e/peaks.test.ts), for exact comparison. */
export function figures(tests: TestCaseSummary[]): TestCaseSummary[] {
  return tests.map(({ leaks: _leaks, errors: _errors, peak: _peak, ...rest }) => rest)
}

/** Test case summaries without their loss records, suppressed amounts and peaks: the counts and kinds alone. */
export function counts(tests: TestCaseSummary[]): TestCaseSummary[] {
  return tests.map(({ leaks: _leaks, suppressed: _suppressed, errors: _errors, peak: _peak, ...rest }) => rest)
}

/**
 * A peak's sites as two backends can agree on them: bytes, blocks and the first frame's source
 * line. Their outer frames may be glibc's start-up code (ld.so's own allocations live at a peak),
 * which the gdb and preload symbolizers name differently (`_dl_start_user`, C++ return types).
 */
export function peakSites(sites: PeakSite[]): { bytes: number; blocks: number; at: string }[] {
  return sites.map((s) => ({ bytes: s.bytes, blocks: s.blocks, at: `${s.stack[0]?.file}:${s.stack[0]?.line}` }))
}

/**
 * debugee/tests.c per test case, counted by hand (see its header) and memcheck's verdict for each
 * test's blocks at its end; every backend must give exactly these.
 */
export const TESTS_C: TestCaseSummary[] = [
  { name: 'test_clean', allocations: 1, frees: 1, bytesAllocated: 100, leakSummary: summary({}), suppressed: none },
  // the second pointer is still in a register at the end marker (memset's r9 and r11): dead by
  // the ABI at a call, so no backend counts it as a root there
  { name: 'test_leaks_two', allocations: 2, frees: 0, bytesAllocated: 96, leakSummary: summary({ definite: { bytes: 96, blocks: 2 } }), suppressed: none },
  {
    name: 'test_indirect',
    allocations: 3,
    frees: 0,
    bytesAllocated: 96,
    leakSummary: summary({ definite: { bytes: 32, blocks: 1 }, indirect: { bytes: 64, blocks: 2 } }),
    suppressed: none,
  },
  // the helper thread's 64 bytes, and glibc's 272-byte DTV for that thread (calloc in
  // allocate_dtv, from pthread_create): only the dead thread's descriptor in its cached stack
  // points to it, 16 bytes in, so memcheck too calls it possibly lost. __libc_freeres frees it at
  // exit, so it is in no final loss record. It is glibc's bookkeeping: suppressed by default.
  {
    name: 'test_thread_leak',
    allocations: 2,
    frees: 0,
    bytesAllocated: 336,
    leakSummary: summary({ definite: { bytes: 64, blocks: 1 } }),
    suppressed: { bytes: 272, blocks: 1 },
  },
  { name: 'test_keeps', allocations: 1, frees: 0, bytesAllocated: 200, leakSummary: summary({ reachable: { bytes: 200, blocks: 1 } }), suppressed: none },
  { name: 'test_frees_kept', allocations: 0, frees: 1, bytesAllocated: 0, leakSummary: summary({}), suppressed: none },
]

/** A run's loss records as `test kind bytes/blocks fn:line <- caller`, sorted: what the backends must agree on. */
export function testSites(run: RunJson): string[] {
  return run.leaks.map((l) => `${l.test} ${l.kind} ${l.bytes}/${l.blocks} ${l.stack[0]!.fn}:${l.stack[0]!.line} <- ${l.stack[1]!.fn}`).sort()
}

/** debugee/tests.c's loss records at exit, each with the test case that allocated its blocks. */
export const TESTS_C_SITES = [
  'test_indirect definite 32/1 node_new:55 <- test_indirect',
  'test_indirect indirect 32/1 node_new:55 <- test_indirect',
  'test_indirect indirect 32/1 node_new:55 <- test_indirect',
  'test_leaks_two definite 48/1 leak:35 <- test_leaks_two',
  'test_leaks_two definite 48/1 leak:35 <- test_leaks_two',
  'test_thread_leak definite 64/1 leak:35 <- worker',
]

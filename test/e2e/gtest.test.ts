import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import type { LeakSummary, TestCaseSummary } from '../../src/model/types.js'
import { program } from '../support/debugee.js'
import { counts } from '../support/test-cases.js'

const none = { bytes: 0, blocks: 0 }
const summary = (kinds: Partial<LeakSummary>): LeakSummary => ({ definite: none, indirect: none, possible: none, reachable: none, ...kinds })

// debugee/gtest/heap_test.cpp, linked with Debian's googletest (libgtest-dev 1.12) and gtest_main.
//
// A test case spans the fixture's life: GoogleTest news the test object (TestFactoryImpl<T>::
// CreateTest: 16 bytes for a TEST, sizeof(Buffer) = sizeof(LeakySetUp) = 24 for these TEST_Fs)
// and testing::Test's constructor news a GTestFlagSaver (248 bytes: every --gtest_ flag copied,
// all short enough to live inside their std::strings); Test::DeleteSelf_ frees both before the
// test ends. So every test case below counts 2 allocations and 2 frees of GoogleTest's own on top
// of what its code does, as memcheck would count them, and neither is ever a leak. (A failing
// assertion would add GoogleTest's failure record, kept in the TestInfo: reachable, not a leak.)
const EXPECTED: TestCaseSummary[] = [
  // 16 + 248 + new int (4)
  { name: 'Heap.Clean', allocations: 3, frees: 3, bytesAllocated: 268, leakSummary: summary({}) },
  // 16 + 248 + new int[10] (40), never deleted
  { name: 'Heap.LeaksNew', allocations: 3, frees: 2, bytesAllocated: 304, leakSummary: summary({ definite: { bytes: 40, blocks: 1 } }) },
  // 16 + 248 + the vector's growth to 1, 2, 4 and 8 ints (4 + 8 + 16 + 32), each freed
  { name: 'Heap.VectorFreed', allocations: 6, frees: 6, bytesAllocated: 324, leakSummary: summary({}) },
  // 24 + 248 + SetUp's new int[16] (64), deleted by TearDown
  { name: 'Buffer.SetUpFreedInTearDown', allocations: 3, frees: 3, bytesAllocated: 336, leakSummary: summary({}) },
  // 24 + 248 + SetUp's new char[48], which TearDown forgets: the test's leak, not the program's
  { name: 'LeakySetUp.LeaksInSetUp', allocations: 3, frees: 2, bytesAllocated: 320, leakSummary: summary({ definite: { bytes: 48, blocks: 1 } }) },
]

// Every backend recognises GoogleTest's tests in the unchanged suite and they agree on every figure:
// under valgrind, gdb on memcheck's gdbserver breaks where the GDB backend does and memcheck counts;
// the preload interposer hooks the same two entries of GoogleTest's event repeater.
describe.each(['preload', 'gdb', 'valgrind'] as const)('GoogleTest, %s backend', (backend) => {
  it.each([
    ['recognised in the unchanged suite', 'gtest-plain'],
    ['bracketed by heapspec_gtest.h, markers winning over recognition', 'gtest-listener'],
  ])('%s: one test case per TEST, named Suite.Name, exact figures', async (_how, name) => {
    const run = await runNative([program(name)], { backend })
    expect(run.json.backend).toBe(backend)
    expect(run.json.program.exitCode).toBe(0)
    expect(counts(run.tests)).toEqual(EXPECTED)
    // a test counted twice would warn that it began while still running
    expect(run.json.warnings).toBeUndefined()
    // GoogleTest frees everything of its own at exit: the two leaks are all that is left
    const sites = run.leaks.map((l) => `${l.test} ${l.kind} ${l.bytes}/${l.blocks} ${l.stack[0]!.fn} (${l.stack[0]!.file?.split('/').pop()}:${l.stack[0]!.line})`)
    expect(sites.sort()).toEqual([
      'Heap.LeaksNew definite 40/1 Heap_LeaksNew_Test::TestBody() (heap_test.cpp:31)',
      'LeakySetUp.LeaksInSetUp definite 48/1 LeakySetUp::SetUp() (heap_test.cpp:59)',
    ])
    expect(run.json.leakSummary).toEqual(summary({ definite: { bytes: 88, blocks: 2 } }))
    expect(run.test('LeakySetUp.LeaksInSetUp').leaks.map((l) => [l.kind, l.bytes])).toEqual([['definite', 48]])
  })

  it('counts only the tests GoogleTest runs (--gtest_filter)', async () => {
    const run = await runNative([program('gtest-plain'), '--gtest_filter=Heap.*:-Heap.Clean'], { backend })
    expect(run.tests.map((t) => t.name)).toEqual(['Heap.LeaksNew', 'Heap.VectorFreed'])
    expect(run.test('Heap.LeaksNew').leakSummary).toEqual(summary({ definite: { bytes: 40, blocks: 1 } }))
  })

  it('leaves test cases to the tests option when it is given', async () => {
    const run = await runNative([program('gtest-plain')], { backend, tests: /^Heap_.*::TestBody/ })
    expect(run.tests.map((t) => [t.name, t.allocations, t.bytesAllocated])).toEqual([
      ['Heap_Clean_Test::TestBody', 1, 4],
      ['Heap_LeaksNew_Test::TestBody', 1, 40],
      ['Heap_VectorFreed_Test::TestBody', 4, 60],
    ])
  })
})

import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import { program } from '../support/debugee.js'
import { figures, TESTS_C, TESTS_C_SITES, testSites } from '../support/test-cases.js'

const EXPECTED = TESTS_C

// The preload interposer hooks --tests functions in the process (an int3 at the entry, its own
// return address on the stack): the same test cases, figures and sites as gdb's breakpoints give.
describe.each(['gdb', 'preload'] as const)('per-test attribution, %s backend', (backend) => {
  it.each([
    ['heapspec.h markers', ['tests'], {}],
    ['--tests functions', ['tests-nomarkers'], { tests: /^test_/ }],
  ] as const)('with %s: exact figures per test case', async (_how, [name], options) => {
    const run = await runNative([program(name)], { backend, ...options })
    expect(run.json.backend).toBe(backend)
    expect(figures(run.tests)).toEqual(EXPECTED)
    expect(run.json.warnings).toBeUndefined()
    // at exit the blocks are grouped by the test that made them, at their source lines
    expect(testSites(run.json)).toEqual(TESTS_C_SITES)
    expect(run.test('test_indirect').leaks.map((l) => l.kind).sort()).toEqual(['definite', 'indirect', 'indirect'])
    expect(() => run.test('test_nope')).toThrow(/no test case "test_nope" in this run\. Known test cases: "test_clean", "test_leaks_two"/)
  })

  it('--tests with an end anchor finds C++ methods (gdb lists them with their parameters)', async () => {
    const run = await runNative([program('gtest-plain')], { backend, tests: /^Heap_.*::TestBody$/ })
    expect(run.tests.map((t) => t.name)).toEqual(['Heap_Clean_Test::TestBody', 'Heap_LeaksNew_Test::TestBody', 'Heap_VectorFreed_Test::TestBody'])
  })

  it('warns about markers out of order instead of misattributing', async () => {
    const run = await runNative([program('tests-misordered')], { backend })
    expect(run.json.warnings).toEqual([
      'test case "ends_never_began" ended but never began',
      'test case "second" began while "first" was still running; "first" ends here',
      'test case "second" ended as "other_name"',
    ])
    expect(run.tests.map((t) => [t.name, t.allocations])).toEqual([
      ['first', 1],
      ['second', 1],
    ])
  })
})

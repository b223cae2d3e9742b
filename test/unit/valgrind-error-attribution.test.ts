import { describe, expect, it } from 'vitest'
import { ErrorAttribution, parseAllErrors } from '../../src/capture/valgrind/error-attribution.js'
import type { MemoryError } from '../../src/model/types.js'

// memcheck's errors tied to test cases from its counters at each boundary (the real-run path is
// test/e2e/valgrind-errors.test.ts); here the bookkeeping, on counters and a saved `v.info all_errors`.

const ALL_ERRORS = `==7== 
==7== 1 errors in context 1 of 2:
==7== Invalid write of size 1
==7==    at 0x1092DE: write_past_end() (errors-tests.cpp:63)
==7==    by 0x1094B7: main (errors-tests.cpp:133)
 Address 0x4d6ddda is 0 bytes after a block of size 10 alloc'd
==7==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==7==    by 0x1092D1: write_past_end() (errors-tests.cpp:62)
==7== 
==7== 3 errors in context 2 of 2:
==7== Invalid free() / delete / delete[] / realloc()
==7==    at 0x484417B: free (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==7==    by 0x109285: double_free() (errors-tests.cpp:50)
==7==    by 0x1094B7: main (errors-tests.cpp:133)
 Address 0x4d6dd20 is 0 bytes inside a block of size 16 free'd
==7== 
==7== ERROR SUMMARY: 4 errors from 2 contexts (suppressed: 0 from 0)
`

function error(what: string, pcs: string[], count: number): MemoryError {
  return { kind: 'x', what, test: null, stack: pcs.map((pc) => ({ fn: null, file: null, line: null, object: null, pc })), count }
}

const FREE = error('Invalid free() / delete / delete[] / realloc()', ['0x109285', '0x1094b7'], 3)
const WRITE = error('Invalid write of size 1', ['0x1092de', '0x1094b7'], 1)
const names = (i: number): string | null => ['a', 'b', 'c'][i] ?? null

describe('ErrorAttribution', () => {
  it('reads each error\'s count from v.info all_errors, keyed past the replacement frames', () => {
    expect([...parseAllErrors(ALL_ERRORS)]).toEqual([
      ['Invalid write of size 1\u00000x1092de,0x1094b7', 1],
      ['Invalid free() / delete / delete[] / realloc()\u00000x109285,0x1094b7', 3],
    ])
  })

  it('gives each test case the errors shown while it ran, and the repeats all_errors names', () => {
    const errors = new ErrorAttribution()
    errors.point(-1, { found: 0, shown: 0, shownEnd: 0 }, undefined) // B a
    errors.point(0, { found: 1, shown: 1, shownEnd: 3 }, undefined) // E a: the free; its leak search showed 2 loss records
    errors.point(-1, { found: 1, shown: 3, shownEnd: 3 }, undefined) // B b
    // b frees twice more and writes once: one error shown, two counted
    errors.point(1, { found: 4, shown: 4, shownEnd: 4 }, ALL_ERRORS) // E b
    const result = errors.assign([FREE, WRITE], names, -1)
    expect(result.errors.map((e) => [e.what, e.test, e.count])).toEqual([
      [FREE.what, 'a', 3],
      [WRITE.what, 'b', 1],
    ])
    expect([...result.byTest].map(([t, own]) => [t, own.map((e) => [e.what, e.test, e.count])])).toEqual([
      [0, [[FREE.what, 'a', 1]]],
      [1, [[FREE.what, 'b', 2], [WRITE.what, 'b', 1]]],
    ])
    expect(result.problems).toEqual([])
  })

  it('what came after the last boundary is the test case running then, repeats too (memcheck\'s counts)', () => {
    const errors = new ErrorAttribution()
    errors.point(-1, { found: 0, shown: 0, shownEnd: 0 }, undefined) // B c (the program is killed inside it)
    const result = errors.assign([FREE], names, 2)
    expect(result.errors.map((e) => e.test)).toEqual(['c'])
    expect(result.byTest.get(2)!.map((e) => e.count)).toEqual([3])
  })

  it('repeats that all_errors does not account for are a warning, never another test case\'s', () => {
    const errors = new ErrorAttribution()
    errors.point(-1, { found: 0, shown: 0, shownEnd: 0 }, undefined)
    errors.point(0, { found: 1, shown: 1, shownEnd: 1 }, undefined)
    errors.point(-1, { found: 1, shown: 1, shownEnd: 1 }, undefined)
    errors.point(1, { found: 3, shown: 1, shownEnd: 1 }, '') // b repeated twice; no list read
    const result = errors.assign([{ ...FREE, count: 3 }], names, -1)
    expect([...result.byTest.keys()]).toEqual([0])
    expect(result.problems).toEqual(["2 repeated memory errors inside test cases could not be matched to memcheck's errors; those test cases' error lists may be short"])
  })
})

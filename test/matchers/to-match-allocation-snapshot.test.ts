import { describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { allocationSnapshot } from '../../matchers/to-match-allocation-snapshot.js'
import { failureOf, parserHeapRun, parserRun } from './run-fixture.js'

describe('toMatchAllocationSnapshot', () => {
  it('stores the counts of a test case and of a run in the test file\'s snapshot', () => {
    const run = parserHeapRun()
    expect(run.test('parses header')).toMatchAllocationSnapshot()
    expect(run).toMatchAllocationSnapshot('whole run')
  })

  it('pins allocations, frees, bytes allocated and the failing kinds\' leaks', () => {
    expect(allocationSnapshot(parserHeapRun().test('parses header'))).toMatchInlineSnapshot(`
      {
        "allocations": 5,
        "bytesAllocated": 1248,
        "frees": 2,
        "leaked": {
          "definite": {
            "blocks": 1,
            "bytes": 1024,
          },
          "indirect": {
            "blocks": 2,
            "bytes": 128,
          },
          "possible": {
            "blocks": 0,
            "bytes": 0,
          },
        },
      }
    `)
    // reachable is not pinned: caches and stdio buffers come and go without being a bug.
    expect(Object.keys(allocationSnapshot(parserRun()).leaked)).toEqual(['definite', 'indirect', 'possible'])
  })

  it('refuses .not, a bad hint, and what is not a run', () => {
    const run = parserHeapRun()
    expect(failureOf(() => expect(run).not.toMatchAllocationSnapshot())).toMatchInlineSnapshot(`"toMatchAllocationSnapshot cannot be used with .not: a snapshot matches or is updated with -u. For a bound, use toAllocateAtMost, toLeakAtMost or toPeakAtMost."`)
    expect(failureOf(() => expect(run).toMatchAllocationSnapshot(1 as never))).toMatchInlineSnapshot(`"Expected the hint of toMatchAllocationSnapshot to be a string, got \`1\` (number)."`)
    expect(failureOf(() => expect([]).toMatchAllocationSnapshot())).toMatchInlineSnapshot(`"Expected the received value of toMatchAllocationSnapshot to be a heap run (from runNative), a test case (from run.test(name)) or a run JSON (schema 1), got \`[]\` (array)."`)
  })
})

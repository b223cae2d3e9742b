import { describe, expect, it } from 'vitest'
import type { BlockListing, ListedRecord } from '../../src/capture/valgrind/block-list.js'
import { TestCaseAttribution } from '../../src/capture/valgrind/test-cases.js'
import { emptyLeakSummary, type HeapTotals, type LeakKind, type LeakRecord, type LeakSummary, type TestCaseSummary } from '../../src/model/types.js'

// Listings as memcheck would give them at each boundary, written by hand: stacks are return
// addresses (`a` and `b` stand for two allocation sites), blocks are [address, size].
type Row = [LeakKind, string, [number, number][], boolean?]
const listing = (...rows: Row[]): BlockListing => ({
  records: rows.map(
    ([kind, stack, blocks, shown = true], i): ListedRecord => ({ number: i + 1, kind, stack, shown, blocks: blocks.map(([address, size]) => ({ address, size })) }),
  ),
})
/** The summaries without their loss records and suppressed amounts (checked in their own tests). */
const figures = (summaries: TestCaseSummary[]): TestCaseSummary[] => summaries.map(({ leaks: _leaks, suppressed: _suppressed, ...rest }) => rest)
const totals = (allocations: number, frees: number, bytesAllocated: number): HeapTotals => ({ allocations, frees, bytesAllocated })
const summary = (kinds: Partial<LeakSummary>): LeakSummary => ({ ...emptyLeakSummary(), ...kinds })
const leak = (kind: LeakKind, stack: string, bytes: number, blocks: number): LeakRecord => ({
  kind,
  bytes,
  blocks,
  test: null,
  stack: stack.split(',').map((pc) => ({ fn: `f${pc}`, file: null, line: null, object: null, pc })),
})

describe('TestCaseAttribution', () => {
  it("gives each test case the heap totals of its interval and the kinds of the blocks it allocated, not older ones'", () => {
    const t = new TestCaseAttribution()
    // one block from before any test case, kept
    t.begin('one', totals(1, 0, 10), listing(['reachable', 'a', [[0x100, 10]]]))
    t.end('one', totals(3, 0, 74), listing(['reachable', 'a', [[0x100, 10]]], ['definite', 'b', [[0x200, 32], [0x240, 32]]]))
    // nothing allocated or freed in between: no listing
    t.begin('two', totals(3, 0, 74), undefined)
    // frees one of one's blocks; its own block of the same size from the same site is new
    t.end('two', totals(4, 1, 106), listing(['reachable', 'a', [[0x100, 10]]], ['definite', 'b', [[0x200, 32], [0x280, 32]]]))
    expect(figures(t.summaries([]))).toEqual([
      { name: 'one', allocations: 2, frees: 0, bytesAllocated: 64, leakSummary: summary({ definite: { bytes: 64, blocks: 2 } }) },
      { name: 'two', allocations: 1, frees: 1, bytesAllocated: 32, leakSummary: summary({ definite: { bytes: 32, blocks: 1 } }) },
    ])
    expect(t.warnings).toEqual([])
  })

  it('tells a new block at an old address apart by its size or stack', () => {
    const t = new TestCaseAttribution()
    t.begin('one', totals(1, 0, 10), listing(['reachable', 'a', [[0x100, 10]]]))
    t.end('one', totals(2, 1, 26), listing(['definite', 'b', [[0x100, 16]]]))
    expect(figures(t.summaries([]))[0]!.leakSummary).toEqual(summary({ definite: { bytes: 16, blocks: 1 } }))
  })

  it('leaves suppressed records out of a test case’s leaks', () => {
    const t = new TestCaseAttribution()
    t.begin('one', totals(0, 0, 0), listing())
    t.end('one', totals(2, 0, 20), listing(['definite', 'a', [[0x100, 10]], false], ['definite', 'b', [[0x200, 10]]]))
    expect(figures(t.summaries([]))[0]!.leakSummary).toEqual(summary({ definite: { bytes: 10, blocks: 1 } }))
  })

  it("warns about markers out of order in the heap model's words, and attributes every block to at most one test case", () => {
    const t = new TestCaseAttribution()
    t.end('ends_never_began', totals(0, 0, 0), listing())
    t.begin('first', totals(0, 0, 0), undefined)
    t.begin('second', totals(1, 0, 10), listing(['reachable', 'a', [[0x100, 10]]]))
    t.end('other_name', totals(2, 0, 30), listing(['reachable', 'a', [[0x100, 10]]], ['reachable', 'b', [[0x200, 20]]]))
    expect(t.warnings).toEqual([
      'test case "ends_never_began" ended but never began',
      'test case "second" began while "first" was still running; "first" ends here',
      'test case "second" ended as "other_name"',
    ])
    expect(figures(t.summaries([])).map((s) => [s.name, s.allocations, s.leakSummary.reachable])).toEqual([
      ['first', 1, { bytes: 0, blocks: 0 }],
      ['second', 1, { bytes: 20, blocks: 1 }],
    ])
  })

  it('a test case answers for its blocks lost at its end or at exit, the suppressed ones counted apart', () => {
    const t = new TestCaseAttribution()
    t.begin('held', totals(0, 0, 0), listing())
    // main's local still holds 0x100 at the end; 0x200 is glibc's (suppressed: not shown)
    t.end('held', totals(2, 0, 24), listing(['reachable', 'a', [[0x100, 8]]], ['possible', 'b', [[0x200, 16]], false]))
    // by exit 0x100 is lost, 0x200 freed
    t.exit(totals(2, 1, 24), listing(['definite', 'a', [[0x100, 8]]]))
    const final = [{ ...leak('definite', 'a', 8, 1), suppression: '{ a }' }]
    const [held] = t.summaries(final)
    expect(held!.leakSummary).toEqual(summary({ definite: { bytes: 8, blocks: 1 } }))
    expect(held!.suppressed).toEqual({ bytes: 16, blocks: 1 })
    expect(held!.leaks).toEqual([{ ...final[0], test: 'held' }])
    // a block lost at exit in no final loss record was suppressed there
    expect(t.summaries([])[0]!.suppressed).toEqual({ bytes: 24, blocks: 2 })
    expect(t.suppressedAtExit(final)).toEqual({ bytes: 0, blocks: 0 })
    expect(t.suppressedAtExit([])).toEqual({ bytes: 8, blocks: 1 })
  })

  it("splits memcheck's final loss records by the test case that allocated each block, by name", () => {
    const t = new TestCaseAttribution()
    t.begin('case', totals(0, 0, 0), listing())
    t.end('case', totals(1, 0, 8), listing(['definite', 'a', [[0x100, 8]]]))
    t.begin('case', totals(1, 0, 8), undefined)
    t.end('case', totals(2, 0, 16), listing(['definite', 'a', [[0x100, 8], [0x200, 8]]]))
    t.begin('other', totals(2, 0, 16), undefined)
    t.end('other', totals(3, 0, 24), listing(['definite', 'a', [[0x100, 8], [0x200, 8], [0x300, 8]]]))
    // after the last test case, outside any
    t.exit(totals(4, 0, 32), listing(['definite', 'a', [[0x100, 8], [0x200, 8], [0x300, 8], [0x400, 8]]]))
    const split = t.attribute([leak('definite', 'a', 32, 4)])
    expect(split.map((l) => [l.test, l.kind, l.bytes, l.blocks])).toEqual([
      ['case', 'definite', 16, 2],
      ['other', 'definite', 8, 1],
      [null, 'definite', 8, 1],
    ])
    expect(split[0]!.stack).toEqual(leak('definite', 'a', 0, 0).stack)
  })

  it('at an end with nothing allocated or freed since the last listing (objects mode), splits the final records by that listing', () => {
    const t = new TestCaseAttribution()
    t.begin('one', totals(0, 0, 0), undefined)
    t.end('one', totals(1, 0, 8), listing(['definite', 'a', [[0x100, 8]]]))
    t.begin('two', totals(1, 0, 8), undefined)
    t.end('two', totals(2, 0, 16), listing(['definite', 'a', [[0x100, 8], [0x200, 8]]]))
    t.exit(totals(2, 0, 16), undefined)
    const split = t.attribute([leak('definite', 'a', 16, 2)])
    expect(split.map((l) => [l.test, l.bytes, l.blocks])).toEqual([
      ['one', 8, 1],
      ['two', 8, 1],
    ])
    expect(t.warnings).toEqual([])
  })

  it('attributes a record whole when the final heap differs from the last listing but its stack has one owner', () => {
    const t = new TestCaseAttribution()
    t.begin('one', totals(0, 0, 0), listing())
    t.end('one', totals(1, 0, 8), listing(['reachable', 'a', [[0x100, 8]]]))
    // reachable at the exit stop (a register), definite in memcheck's final check
    t.exit(totals(1, 0, 8), listing(['reachable', 'a', [[0x100, 8]]]))
    expect(t.attribute([leak('definite', 'a', 8, 1)]).map((l) => l.test)).toEqual(['one'])
  })

  it('without a final listing (the program was killed), uses the last one: unknown blocks are the running test case’s', () => {
    const t = new TestCaseAttribution()
    t.begin('one', totals(0, 0, 0), listing())
    t.end('one', totals(1, 0, 8), listing(['reachable', 'a', [[0x100, 8]]]))
    t.begin('hangs', totals(1, 0, 8), undefined)
    const split = t.attribute([leak('definite', 'a', 8, 1), leak('definite', 'b', 16, 1)])
    expect(split.map((l) => [l.test, l.bytes])).toEqual([
      ['hangs', 16],
      ['one', 8],
    ])
  })

  it('says so when a record mixes test cases and cannot be split', () => {
    const t = new TestCaseAttribution()
    t.begin('one', totals(0, 0, 0), listing())
    t.end('one', totals(1, 0, 8), listing(['reachable', 'a', [[0x100, 8]]]))
    t.begin('two', totals(1, 0, 8), undefined)
    t.end('two', totals(2, 0, 16), listing(['reachable', 'a', [[0x100, 8], [0x200, 8]]]))
    t.exit(totals(2, 0, 16), listing(['reachable', 'a', [[0x100, 8], [0x200, 8]]]))
    expect(t.attribute([leak('definite', 'a', 8, 1)]).map((l) => l.test)).toEqual([null])
    expect(t.warnings).toEqual(['8 bytes in 1 blocks (definite, allocated at fa) were allocated from the same place by several test cases and could not be attributed to one'])
  })
})

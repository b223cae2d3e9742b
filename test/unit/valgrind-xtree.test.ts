import { readFileSync } from 'node:fs'
import { describe, it, expect } from 'vitest'
import { CaptureFailedError } from '../../src/errors.js'
import { parseXtreeTotals } from '../../src/capture/valgrind/xtree.js'

// Saved from the same real memcheck runs as the XML fixtures (--xtree-memory=full).
const fixture = (name: string): string => readFileSync(new URL(`../fixtures/valgrind/${name}`, import.meta.url), 'utf8')

describe('parseXtreeTotals', () => {
  // Each equals memcheck's own text output for the program (debugee/expected.json, or the
  // header of debugee/errors.cpp).
  it.each([
    ['indirect.xtree', { allocations: 8, frees: 1, bytesAllocated: 288 }, { bytes: 256, blocks: 7 }],
    ['crash.xtree', { allocations: 2, frees: 0, bytesAllocated: 384 }, { bytes: 384, blocks: 2 }],
    // memcheck's text says 7 frees here: it also counts the double free, a free of no live block.
    ['errors.xtree', { allocations: 6, frees: 6, bytesAllocated: 72754 }, { bytes: 0, blocks: 0 }],
  ])('reads the heap summary of %s', (name, totals, inUseAtExit) => {
    expect(parseXtreeTotals(fixture(name), name)).toEqual({ totals, inUseAtExit })
  })

  it('reads a report with nothing allocated yet, whose totals memcheck writes as (null)', () => {
    const text = 'events: curB  curBk  totB  totBk  totFdB  totFdBk \ntotals: (null)\n'
    expect(parseXtreeTotals(text, 'x')).toEqual({ totals: { allocations: 0, frees: 0, bytesAllocated: 0 }, inUseAtExit: { bytes: 0, blocks: 0 } })
  })

  it('finds the counters by their event names, in any order', () => {
    const text = 'events: totB totBk totFdB totFdBk curB curBk\nfl=(1) a.c\ntotals: 100 3 40 1 60 2\n'
    expect(parseXtreeTotals(text, 'x')).toEqual({ totals: { allocations: 3, frees: 1, bytesAllocated: 100 }, inUseAtExit: { bytes: 60, blocks: 2 } })
  })

  const failure = (text: string): string => {
    let caught: unknown
    try {
      parseXtreeTotals(text, 'xtmemory.42')
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(CaptureFailedError)
    return (caught as Error).message
  }

  it('fails clearly when the report was cut before its totals', () => {
    const cut = fixture('crash.xtree').replace(/^totals:.*$/m, '')
    expect(failure(cut)).toBe(
      "heapspec: memcheck's xtree memory report (xtmemory.42) has no `totals:` line. " +
        "valgrind stopped before writing it, or this valgrind writes another format; run with HEAPSPEC_DEBUG=1 to see its log.",
    )
  })

  it('fails clearly on a report without the freed counters (--xtree-memory=allocs)', () => {
    expect(failure('events: curB curBk totB totBk\ntotals: 1 1 1 1\n')).toMatch(/does not count `totFdBk` \(its events are `curB curBk totB totBk`; was it written with --xtree-memory=full\?\)\./)
  })

  it('fails clearly on totals it cannot read', () => {
    expect(failure('events: curB curBk totB totBk totFdB totFdBk\ntotals: 1 1 1 1 x 1\n')).toMatch(/has a `totals:` line heapspec cannot read \(`totals: 1 1 1 1 x 1`\)/)
    expect(failure('events: curB curBk totB totBk totFdB totFdBk\ntotals: 1 1 1 1\n')).toMatch(/has 4 totals for 6 events/)
    expect(failure('totals: 1 1 1 1 1 1\n')).toMatch(/has no `events:` line/)
  })
})

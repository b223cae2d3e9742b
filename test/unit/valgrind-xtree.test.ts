import { readFileSync } from 'node:fs'
import { describe, it, expect } from 'vitest'
import { CaptureFailedError } from '../../src/errors.js'
import { parseXtreeMassif, parseXtreeTotals } from '../../src/capture/valgrind/xtree.js'

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

describe('parseXtreeMassif', () => {
  // debugee/build/libc under memcheck, its report in massif format (`--xtree-memory-file=*.ms`):
  // libc.ms with text frames (as `monitor xtmemory` writes it during a run), libc-xml.ms with XML
  // frames (as the report at exit comes out with --xml=yes). Every block the program has is
  // allocated by libc on its behalf (strdup, getdelim, asprintf, fmemopen's FILE and buffer).
  const LIBC_TEXT = 0x4880000
  const inLibc = (pc: number | undefined): boolean => pc !== undefined && pc >= LIBC_TEXT && pc < LIBC_TEXT + 0x180000
  const all = { totals: { allocations: 11, frees: 7, bytesAllocated: 8902 }, inUseAtExit: { bytes: 171, blocks: 4 } }

  it("keeps the blocks whose allocator's caller is in the chosen code: here libc, so all of memcheck's figures", async () => {
    expect(await parseXtreeMassif([fixture('libc.ms')], (f) => inLibc(f.pc), 'libc.ms')).toEqual(all)
    expect(await parseXtreeMassif([fixture('libc-xml.ms')], (f) => /\/libc\.so/.test(f.object ?? ''), 'libc-xml.ms')).toEqual(all)
  })

  it('counts a place by its own allocations: strdup allocated 12 + 36 bytes, freed the first, kept the second', async () => {
    const strdup = { totals: { allocations: 2, frees: 1, bytesAllocated: 48 }, inUseAtExit: { bytes: 36, blocks: 1 } }
    expect(await parseXtreeMassif([fixture('libc.ms')], (f) => f.pc === 0x48fa9a9, 'libc.ms')).toEqual(strdup)
    const xml = await parseXtreeMassif([fixture('libc-xml.ms')], (f) => f.pc === 0x48fa9a9 && f.object === '/usr/lib/x86_64-linux-gnu/libc.so.6', 'x')
    expect(xml).toEqual(strdup)
  })

  it('keeps the blocks with chosen code deeper on the stack: main\'s call of dup_strings is its strdup, strdup and strndup', async () => {
    // dup_strings (debugee/libc.c) copies 12 bytes (freed), 36 and 6 (kept) through libc
    const dup = { totals: { allocations: 3, frees: 1, bytesAllocated: 54 }, inUseAtExit: { bytes: 42, blocks: 2 } }
    expect(await parseXtreeMassif([fixture('libc.ms')], (f) => f.pc === 0x109311, 'libc.ms')).toEqual(dup)
    const callSites = [0x1091ee, 0x1091cf, 0x109206, 0x1091df]
    expect(await parseXtreeMassif([fixture('libc.ms')], (f) => callSites.includes(f.pc!), 'libc.ms')).toEqual(dup)
  })

  it('counts a block once when several of its frames are chosen: the program is on every stack, so all of memcheck\'s figures', async () => {
    expect(await parseXtreeMassif([fixture('libc-xml.ms')], (f) => /\/debugee\/build\/libc$/.test(f.object ?? ''), 'x')).toEqual(all)
    expect(await parseXtreeMassif([fixture('libc.ms')], () => true, 'x')).toEqual(all)
  })

  it('reads the report in chunks that split its lines anywhere', async () => {
    const text = fixture('libc.ms')
    const chunks = Array.from({ length: Math.ceil(text.length / 97) }, (_, i) => Buffer.from(text.slice(i * 97, i * 97 + 97)))
    expect(await parseXtreeMassif(chunks, (f) => inLibc(f.pc), 'x')).toEqual(all)
  })

  it('fails clearly on a report without the allocation trees, or with a node it cannot read', async () => {
    const failure = async (text: string): Promise<string> => {
      const error = await parseXtreeMassif([text], () => true, 'xt-3.ms').then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(CaptureFailedError)
      return (error as Error).message
    }
    expect(await failure('heap_tree=detailed\nn1: 10 curB : currently allocated Bytes\n n0: 10 0x1: f (a.c:1)\n')).toBe(
      "heapspec: memcheck's massif-format xtree memory report (xt-3.ms) has no `totBk` tree (was it written with --xtree-memory=full?). " +
        'valgrind stopped before writing it, or this valgrind writes another format; run with HEAPSPEC_DEBUG=1 to see its log.',
    )
    expect(await failure('n1: 10 curB : x\n nx: 10\n')).toMatch(/has a node heapspec cannot read \(` nx: 10`\)/)
  })
})

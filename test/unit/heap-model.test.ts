import { describe, expect, it } from 'vitest'
import { HeapModel, testVerdicts } from '../../src/model/heap.js'
import type { Frame } from '../../src/model/types.js'

const frame = (fn: string, line: number): Frame => ({ fn, file: 'prog.c', line, object: '/prog' })

describe('HeapModel counts as memcheck does', () => {
  it('a realloc is one allocation and one free; realloc(NULL, n) a malloc; realloc(p, 0) a free', () => {
    const m = new HeapModel()
    m.allocate(0x1000, 10, 0)
    m.reallocate(0x1000, 0x2000, 20, 0) // moved: free 0x1000, allocate 0x2000
    m.reallocate(0, 0x3000, 30, 0) // realloc(NULL, 30)
    m.reallocate(0x3000, 0, 0, 0) // realloc(p, 0) frees p and returns NULL
    m.reallocate(0x2000, 0, 40, 0) // a failed realloc leaves p alone
    expect(m.totals).toEqual({ allocations: 3, frees: 2, bytesAllocated: 60 })
    expect([...m.live.keysOf()]).toEqual([0x2000])
  })

  it('a free of an unknown address is no free', () => {
    const m = new HeapModel()
    expect(m.free(0x1234)).toBe(false)
    expect(m.totals.frees).toBe(0)
    expect(m.unknownFrees).toBe(1)
  })

  it('attributes allocations and frees to the running test case, whichever block they touch', () => {
    const m = new HeapModel()
    m.beginTest('keeps')
    m.allocate(0x1000, 8, 0)
    m.endTest('keeps', undefined)
    m.beginTest('frees')
    m.free(0x1000)
    m.endTest('frees', undefined)
    expect(m.testSummaries().map((t) => [t.name, t.allocations, t.frees, t.bytesAllocated])).toEqual([
      ['keeps', 1, 0, 8],
      ['frees', 0, 1, 0],
    ])
  })

  it('groups loss records by kind, test and stack, starting at the allocator caller, biggest first', () => {
    const m = new HeapModel()
    m.defineStack(0, [1, 2, 3])
    m.defineStack(1, [4, 3])
    const symbols: Record<number, Frame> = {
      1: { ...frame('operator new(unsigned long)', 0), file: null, object: '/lib/libstdc++.so.6' },
      2: frame('make', 5),
      3: frame('main', 9),
      4: frame('make', 5),
    }
    m.allocate(0x10, 16, 0)
    m.allocate(0x20, 16, 0)
    m.allocate(0x30, 100, 1)
    const classified = [...m.live.values()].map((block) => ({ block, kind: 'definite' as const }))
    const records = m.lossRecords(classified, (pc) => ({ ...symbols[pc]!, pc: String(pc) }))
    expect(records.map((r) => [r.kind, r.bytes, r.blocks, r.stack.map((f) => f.fn).join(' <- ')])).toEqual([
      ['definite', 100, 1, 'make <- main'],
      ['definite', 32, 2, 'make <- main'],
    ])
  })
})

describe('loss sites: records with the allocator a suppression names first', () => {
  it('operator new for a C++ new (its frames dropped from the stack), realloc for a realloc, else any of the malloc family', () => {
    const m = new HeapModel()
    m.defineStack(0, [1, 2])
    m.defineStack(1, [3, 2])
    m.defineStack(2, [4, 2])
    m.allocate(0x10, 16, 0)
    m.reallocate(0, 0x20, 8, 1)
    m.allocate(0x30, 4, 2)
    const symbols: Record<number, Frame> = { 1: { ...frame('operator new(unsigned long)', 0), object: '/lib/libstdc++.so.6' }, 2: frame('main', 9), 3: frame('grow', 4), 4: frame('make', 7) }
    const sites = m.lossSites(
      [...m.live.values()].map((block) => ({ block, kind: 'definite' as const })),
      (pc) => ({ ...symbols[pc]!, pc: String(pc) }),
    )
    expect(sites.map((s) => [s.record.bytes, s.allocator, s.record.stack.map((f) => f.fn).join(' <- ')])).toEqual([
      [16, 'operator new(unsigned long)', 'main'],
      [8, 'realloc', 'grow <- main'],
      [4, null, 'make <- main'],
    ])
  })
})

describe('what a test case answers for', () => {
  const scan = (blocks: { start: number; size: number; stack: number; test: number }[], kinds: string[]) =>
    blocks.map((block, i) => ({ block: block as never, kind: kinds[i] as 'definite' }))

  it('its blocks lost at its end or still live and lost at exit: the exit kind when lost at exit, else the kind at its end', () => {
    const held = { start: 0x10, size: 15, stack: 0, test: 0 } // main's local holds it at the end; lost by exit
    const dtv = { start: 0x20, size: 272, stack: 0, test: 0 } // possible at the end; freed at exit
    const kept = { start: 0x30, size: 200, stack: 0, test: 0 } // reachable at the end, freed by a later test case
    const lostLater = { start: 0x40, size: 8, stack: 0, test: 0 } // possible at the end, definite at exit
    const outside = { start: 0x50, size: 4, stack: 0, test: -1 }
    const second = { start: 0x60, size: 6, stack: 0, test: 1 } // no image at its end (longjmp): the exit decides
    const verdicts = testVerdicts(
      2,
      [scan([held, dtv, kept, lostLater], ['reachable', 'possible', 'reachable', 'possible']), undefined],
      scan([held, lostLater, outside, second], ['definite', 'definite', 'definite', 'indirect']),
    )
    expect(verdicts.map((v) => v.map(({ block, kind, at }) => [(block as { size: number }).size, kind, at]))).toEqual([
      [
        [15, 'definite', 'exit'],
        [272, 'possible', 'end'],
        [200, 'reachable', 'end'],
        [8, 'definite', 'exit'],
      ],
      [[6, 'indirect', 'exit']],
    ])
  })
})

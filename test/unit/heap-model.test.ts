import { describe, expect, it } from 'vitest'
import { HeapModel } from '../../src/model/heap.js'
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
    expect([...m.live.keys()]).toEqual([0x2000])
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

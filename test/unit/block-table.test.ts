import { describe, expect, it } from 'vitest'
import { BlockTable, REALLOC } from '../../src/model/block-table.js'
import { sortedIndices } from '../../src/model/leak-scan.js'

describe('BlockTable', () => {
  it('keeps every block through growth and deletions, as a Map would', () => {
    const table = new BlockTable()
    const reference = new Map<number, number>()
    let x = 0x55550000
    // addresses 16 apart and far apart, deleted in an order unlike their insertion
    for (let i = 0; i < 50_000; i++) {
      const addr = i % 3 === 0 ? 0x7f0000000000 + i * 4096 : x + i * 16
      table.set(addr, i, i % 7, -1, 0)
      reference.set(addr, i)
    }
    let n = 0
    for (const addr of [...reference.keys()]) {
      if (n++ % 2 === 0) {
        expect(table.delete(addr)).toBe(true)
        reference.delete(addr)
      }
    }
    expect(table.delete(0x1234560)).toBe(false)
    expect(table.size).toBe(reference.size)
    for (const [addr, size] of reference) expect(table.get(addr)?.size).toBe(size)
    const columns = table.columns()
    expect(columns.count).toBe(reference.size)
    expect(new Set(columns.starts)).toEqual(new Set(reference.keys()))
    x = 0
  })

  it('gives a block replaced at its address a new identity (seq)', () => {
    const table = new BlockTable()
    table.set(0x1000, 8, 1, 0, 0)
    const first = table.get(0x1000)!.seq
    table.set(0x1000, 16, 2, 1, REALLOC)
    expect(table.size).toBe(1)
    expect(table.get(0x1000)).toEqual({ start: 0x1000, size: 16, stack: 2, test: 1, realloc: true, seq: first + 1 })
  })
})

describe('BlockTable columns', () => {
  it('stay as they were handed out while the table changes (a deleted row takes the last one)', () => {
    const table = new BlockTable()
    for (let i = 1; i <= 5; i++) table.set(i * 0x100, i, i, -1, 0)
    const before = table.columns()
    table.delete(0x200) // row 1 takes the last row's block (0x500)
    table.set(0x600, 6, 6, 0, REALLOC)
    const after = table.columns()
    expect([...before.starts]).toEqual([0x100, 0x200, 0x300, 0x400, 0x500])
    expect([...before.sizes]).toEqual([1, 2, 3, 4, 5])
    expect([...after.starts]).toEqual([0x100, 0x500, 0x300, 0x400, 0x600])
    expect([...after.seqs]).toEqual([0, 4, 2, 3, 5])
    expect(table.get(0x500)).toEqual({ start: 0x500, size: 5, stack: 5, test: -1, seq: 4 })
    expect(table.has(0x200)).toBe(false)
  })

  it('take a batch numbered by the observer (reserve, reserveSeqs) in any order', () => {
    const table = new BlockTable()
    table.set(0x10, 1, 0, -1, 0)
    table.reserve(3)
    const base = table.reserveSeqs(10)
    for (const [addr, seq] of [[0x30, 7], [0x20, 2], [0x40, 9]] as const) table.set(addr, 8, 1, -1, 0, base + seq)
    table.set(0x50, 1, 0, -1, 0)
    expect([...table.values()].sort((a, b) => a.seq - b.seq).map((b) => [b.start, b.seq])).toEqual([
      [0x10, 0],
      [0x20, 3],
      [0x30, 8],
      [0x40, 10],
      [0x50, 11],
    ])
  })
})

describe('sortedIndices', () => {
  it('orders 48-bit keys as a comparison sort does', () => {
    const keys = Float64Array.from({ length: 10_000 }, (_, i) => ((i * 2654435761) % 2 ** 32) * 65536 + (i % 65536))
    const expected = [...keys.keys()].sort((a, b) => keys[a]! - keys[b]!)
    expect([...sortedIndices(keys)]).toEqual(expected)
  })

  it('orders keys that differ only in some digits (the passes skipped) and across the 32-bit halves', () => {
    const keys = Float64Array.from([0x7f0000001000, 0x555500000010, 0x7f0000000ff0, 0x555500000000, 2 ** 32, 2 ** 32 - 16, 0, 0x7f0000001000])
    const expected = [...keys.keys()].sort((a, b) => keys[a]! - keys[b]! || a - b)
    expect([...sortedIndices(keys)]).toEqual(expected)
  })
})

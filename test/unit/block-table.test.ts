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

describe('sortedIndices', () => {
  it('orders 48-bit keys as a comparison sort does', () => {
    const keys = Float64Array.from({ length: 10_000 }, (_, i) => ((i * 2654435761) % 2 ** 32) * 65536 + (i % 65536))
    const expected = [...keys.keys()].sort((a, b) => keys[a]! - keys[b]!)
    expect([...sortedIndices(keys)]).toEqual(expected)
  })
})

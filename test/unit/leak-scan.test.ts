import { describe, expect, it } from 'vitest'
import { classifyBlocks, type MemoryRegion } from '../../src/model/leak-scan.js'

const HEAP = 0x10000

/** A region of `size` bytes at `start` with 64-bit words written at the given offsets. */
function region(start: number, size: number, words: Record<number, number> = {}): MemoryRegion {
  const bytes = new Uint8Array(size)
  const view = new DataView(bytes.buffer)
  for (const [offset, value] of Object.entries(words)) {
    view.setUint32(Number(offset), value % 0x100000000, true)
    view.setUint32(Number(offset) + 4, Math.floor(value / 0x100000000), true)
  }
  return { start, bytes }
}

// blocks at HEAP + 0x100 * i, each 64 bytes
const block = (i: number) => ({ start: HEAP + 0x100 * i, size: 64 })
const at = (i: number, offset = 0) => HEAP + 0x100 * i + offset

describe('classifyBlocks (memcheck leak kinds)', () => {
  it('a block with no pointer to it is definite; one held from a root is reachable', () => {
    const heap = region(HEAP, 0x400)
    const roots = [region(0x1000, 64, { 8: at(1) })]
    expect(classifyBlocks([block(0), block(1)], { heap: [heap], roots, registers: [] })).toEqual(['definite', 'reachable'])
  })

  it('blocks reached only from a lost block are indirect, and a lost cycle keeps one definite', () => {
    // 0 -> 1 -> 2 (lost list); 3 <-> 4 (lost cycle)
    const heap = region(HEAP, 0x500, { 0x000: at(1), 0x100: at(2), 0x300: at(4), 0x400: at(3) })
    expect(classifyBlocks([0, 1, 2, 3, 4].map(block), { heap: [heap], roots: [], registers: [] })).toEqual([
      'definite',
      'indirect',
      'indirect',
      'definite',
      'indirect',
    ])
  })

  it('a later lost block that points at an earlier clique leader makes it indirect', () => {
    // 1 -> 0: block 0 is processed first as a leader, then absorbed by block 1's clique
    const heap = region(HEAP, 0x200, { 0x100: at(0) })
    expect(classifyBlocks([block(0), block(1)], { heap: [heap], roots: [], registers: [] })).toEqual(['indirect', 'definite'])
  })

  it('an interior pointer makes a block possible, and what it points to possible too', () => {
    const heap = region(HEAP, 0x300, { 0x000: at(1) })
    const roots = [region(0x1000, 16, { 0: at(0, 16) })]
    expect(classifyBlocks([block(0), block(1), block(2)], { heap: [heap], roots, registers: [] })).toEqual(['possible', 'possible', 'definite'])
  })

  it('a start pointer found later upgrades a possible block to reachable', () => {
    const heap = region(HEAP, 0x200)
    const roots = [region(0x1000, 16, { 0: at(0, 8 + 16) }), region(0x2000, 8, { 0: at(0) })]
    expect(classifyBlocks([block(0)], { heap: [heap], roots, registers: [] })).toEqual(['reachable'])
  })

  it('registers are roots', () => {
    const heap = region(HEAP, 0x200)
    expect(classifyBlocks([block(0), block(1)], { heap: [heap], roots: [], registers: [at(1)] })).toEqual(['definite', 'reachable'])
  })

  it("new[]'s element-count cookie: a pointer past it counts as a start pointer (memcheck's newarray heuristic)", () => {
    // 3 elements of 8 bytes after an 8-byte count: block size 32, first word 3
    const heap = region(HEAP, 0x100, { 0: 3 })
    const roots = [region(0x1000, 8, { 0: HEAP + 8 })]
    expect(classifyBlocks([{ start: HEAP, size: 32 }], { heap: [heap], roots, registers: [] })).toEqual(['reachable'])
    const notACount = region(HEAP, 0x100, { 0: 5 })
    expect(classifyBlocks([{ start: HEAP, size: 32 }], { heap: [notACount], roots, registers: [] })).toEqual(['possible'])
  })

  it('a zero-size block is hit by a pointer to its start', () => {
    const roots = [region(0x1000, 8, { 0: HEAP })]
    expect(classifyBlocks([{ start: HEAP, size: 0 }], { heap: [region(HEAP, 16)], roots, registers: [] })).toEqual(['reachable'])
  })

  it("ignores the allocator's pointers at the next chunk's header inside its own data", () => {
    // a 24-byte block in a 32-byte chunk: the next chunk's header sits 16 bytes into the block
    const roots = [region(0x1000, 8, { 0: HEAP + 16 })]
    const image = { heap: [region(HEAP - 16, 0x100)], roots, registers: [], allocatorRoots: roots, chunkEnd: () => HEAP + 16 }
    expect(classifyBlocks([{ start: HEAP, size: 24 }], image)).toEqual(['definite'])
    expect(classifyBlocks([{ start: HEAP, size: 24 }], { ...image, allocatorRoots: [] })).toEqual(['possible'])
  })
})

describe('classifyBlocks: where the words are', () => {
  it('finds a pointer into a block that spans pages, and none in a page no block covers', () => {
    // block 0: 3 pages from 0x100000, pointed at (interior) in its last page; block 1 far above
    // it; a root word between them, on a page no block covers, points at nothing
    const big = { start: 0x100000, size: 0x3000 }
    const far = { start: 0x200000, size: 32 }
    const heap = [region(0x100000, 0x3000, { 0x10: far.start }), region(0x200000, 32)]
    const roots = [region(0x1000, 24, { 0: 0x102ff0, 8: 0x150000, 16: far.start + 8 })]
    expect(classifyBlocks([big, far], { heap, roots, registers: [] })).toEqual(['possible', 'possible'])
    expect(classifyBlocks([big, far], { heap, roots: [region(0x1000, 8, { 0: 0x100000 })], registers: [] })).toEqual(['reachable', 'reachable'])
  })

  it('reads regions whose bytes sit at an odd offset of their buffer, and regions that start off a word', () => {
    // block 0 points at block 1; its bytes one byte into their buffer
    const heap = region(HEAP, 0x200, { 0: at(1) })
    const odd = new Uint8Array(heap.bytes.length + 1)
    odd.set(heap.bytes, 1)
    // the root at 0x1003 holds one aligned word, at 0x1008 (its offset 5); its other bytes are no word
    const root = region(0x1003, 16, { 5: at(0) })
    expect(classifyBlocks([block(0), block(1)], { heap: [{ start: HEAP, bytes: odd.subarray(1) }], roots: [root], registers: [] })).toEqual(['reachable', 'reachable'])
    // a Buffer's bytes at an odd offset (as an own image's blocks lie in its file): its slice() is no copy
    const buffer = Buffer.alloc(heap.bytes.length + 3)
    buffer.set(heap.bytes, 3)
    expect(classifyBlocks([block(0), block(1)], { heap: [{ start: HEAP, bytes: buffer.subarray(3) }], roots: [root], registers: [] })).toEqual(['reachable', 'reachable'])
    expect(classifyBlocks([block(0), block(1)], { heap: [region(HEAP, 0x200)], roots: [root], registers: [] })).toEqual(['reachable', 'definite'])
    expect(classifyBlocks([block(0), block(1)], { heap: [heap], roots: [region(0x1003, 16, { 1: at(0) })], registers: [] })).toEqual(['definite', 'indirect'])
  })
})

import { describe, expect, it } from 'vitest'
import { describeError, type ObservedError } from '../../src/model/memory-errors.js'
import type { Frame } from '../../src/model/types.js'

const frame = (fn: string, file: string, line: number): Frame => ({ fn, file, line, object: '/bin/p' })
// stack ids: 0 the bad call, 1 the first free, 2 the allocation, 3 a function's entry
const STACKS: Frame[][] = [
  [frame('twice', 'src/f.c', 9), frame('main', 'src/f.c', 30), frame('__libc_start_call_main', 'libc.c', 58)],
  [frame('twice', 'src/f.c', 8), frame('main', 'src/f.c', 30)],
  [frame('operator new(unsigned long)', 'new_op.cc', 50), frame('twice', 'src/f.c', 7), frame('main', 'src/f.c', 30)],
  [frame('twice', 'src/f.c', 6)],
]
const frames = (id: number): Frame[] => STACKS[id] ?? []
const error = (story: ObservedError['story'], kind = 'invalid-free'): ObservedError => ({ kind, test: 0, stack: 0, addr: 0x4a40048, story })

describe('describeError: memcheck\'s words for an observed bad free', () => {
  it('a double free: the first free\'s stack, then the allocation\'s (the allocator frame dropped, nothing below main)', () => {
    expect(describeError(error({ kind: 'freed', base: 0x4a40040, size: 16, freeStack: 1, allocStack: 2 }), 'double_free', frames)).toEqual({
      kind: 'invalid-free',
      what: 'Invalid free() / delete / delete[] / realloc()',
      test: 'double_free',
      stack: STACKS[0]!.slice(0, 2),
      auxStacks: [
        { what: "Address 0x4a40048 is 8 bytes inside a block of size 16 free'd", stack: STACKS[1] },
        { what: "Block was alloc'd at", stack: STACKS[2]!.slice(1) },
      ],
    })
  })

  it('a mismatched free: the block\'s allocation', () => {
    const described = describeError(error({ kind: 'alloc', base: 0x4a40048, size: 4, allocStack: 2 }, 'mismatched-free'), null, frames)
    expect(described.what).toBe('Mismatched free() / delete / delete []')
    expect(described.test).toBeNull()
    expect(described.auxStacks).toEqual([{ what: "Address 0x4a40048 is 0 bytes inside a block of size 4 alloc'd", stack: STACKS[2]!.slice(1) }])
  })

  it('a stack address: the thread, and the frame (memcheck counts the free as #0) by its function\'s entry line', () => {
    expect(describeError(error({ kind: 'stack', thread: 1, frame: 0, entryStack: 3 }), null, frames).auxStacks).toEqual([
      { what: "Address 0x4a40048 is on thread 1's stack", stack: [] },
      { what: 'in frame #1, created by twice (f.c:6)', stack: [] },
    ])
  })

  it('a static, and an address nothing holds', () => {
    expect(describeError(error({ kind: 'data', symbol: 'g_buf', offset: 8 }), null, frames).auxStacks).toEqual([
      { what: 'Address 0x4a40048 is 8 bytes inside data symbol "g_buf"', stack: [] },
    ])
    expect(describeError(error({ kind: 'none' }), null, frames).auxStacks).toEqual([
      { what: "Address 0x4a40048 is not stack'd, malloc'd or (recently) free'd", stack: [] },
    ])
  })
})

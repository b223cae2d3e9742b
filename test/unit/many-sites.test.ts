import { describe, expect, it } from 'vitest'
import { compareWhere, HeapModel } from '../../src/model/heap.js'
import { applySuppressions, parseSuppressions } from '../../src/model/suppressions.js'
import type { Frame, LeakRecord } from '../../src/model/types.js'

// What the per-site work of a report must give, whatever shortcut it takes: the order of the
// text each stack reads as, the first ten of a full sort, and suppressions matched record by record.

/** A small generator of numbers, the same every run. */
function numbers(seed: number): () => number {
  let x = seed
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31
    return x / 2 ** 31
  }
}

const frame = (fn: string | null, file: string | null, line: number | null, object: string | null, pc = 0): Frame => ({ fn, file, line, object, pc: `0x${pc.toString(16)}` })
const text = (stack: Frame[]): string => stack.map((f) => `${f.fn}|${f.file}|${f.line}|${f.object}`).join(',')
const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

describe('compareWhere', () => {
  it('orders stacks as their text would, prefixes, empty names and nulls included', () => {
    // 'a' < 'ab' as fields, yet 'a|...' > 'ab|...' as text ('|' is after 'b'): the text decides
    const cases: [Frame[], Frame[]][] = [
      [[frame('a', 'f.c', 1, '/p')], [frame('ab', 'f.c', 1, '/p')]],
      [[frame('f', 'x.c', 10, '/p')], [frame('f', 'x.c', 9, '/p')]],
      [[frame('f', null, null, '/p')], [frame('f', 'n.c', 1, '/p')]],
      [[frame('', 'f.c', 1, '/p')], [frame(null, 'f.c', 1, '/p')]],
      [[frame('f', 'f.c', 1, '/p')], [frame('f', 'f.c', 1, '/p'), frame('main', 'm.c', 2, '/p')]],
      [[], [frame('f', 'f.c', 1, '/p')]],
      [[], []],
    ]
    for (const [a, b] of cases) {
      expect(compareWhere(a, b)).toBe(order(text(a), text(b)))
      expect(compareWhere(b, a)).toBe(order(text(b), text(a)))
    }
    const random = numbers(7)
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!
    const stack = (): Frame[] =>
      Array.from({ length: 1 + Math.floor(random() * 3) }, () => frame(pick(['f', 'fa', 'f|', null, '']), pick(['a.c', 'a.cc', null]), pick([1, 10, 2, null]), pick(['/p', '/p2', null])))
    for (let i = 0; i < 2000; i++) {
      const a = stack()
      const b = random() < 0.3 ? a.map((f) => ({ ...f })) : stack()
      expect(compareWhere(a, b)).toBe(order(text(a), text(b)))
    }
  })
})

describe('HeapModel.peakSites', () => {
  it('names the same ten sites, in the same order, as sorting them all would', () => {
    const random = numbers(11)
    const model = new HeapModel()
    const frames = new Map<number, Frame>()
    const amounts: { stack: number; bytes: number; blocks: number }[] = []
    for (let id = 0; id < 3000; id++) {
      const pc = 0x1000 + id
      // few distinct texts: most sites tie on their amounts and their text alike
      frames.set(pc, frame(`f${Math.floor(random() * 5)}`, 'a.c', Math.floor(random() * 4), '/p', pc))
      model.defineStack(id, [pc])
      amounts.push({ stack: id, bytes: 16 * (1 + Math.floor(random() * 3)), blocks: 1 + Math.floor(random() * 2) })
    }
    const symbol = (pc: number): Frame => frames.get(pc)!
    const all = amounts.map((a) => ({ bytes: a.bytes, blocks: a.blocks, stack: [symbol(0x1000 + a.stack)] }))
    const sorted = [...all].sort((a, b) => b.bytes - a.bytes || b.blocks - a.blocks || order(text(a.stack), text(b.stack)))
    for (const limit of [1, 10, 25]) expect(model.peakSites(amounts, symbol, limit)).toEqual(sorted.slice(0, limit))
    expect(model.peakSites(amounts, symbol, 0)).toEqual([])
  })
})

describe('applySuppressions, matched once per what a suppression can see', () => {
  const record = (fn: string, line: number): LeakRecord => ({ kind: 'definite', bytes: 16, blocks: 1, test: null, stack: [frame(fn, 'src/a.c', line, '/p'), frame('main', 'src/m.c', 3, '/p')] })
  const sites = [record('make', 1), record('make', 2), record('other', 2), record('make', 2)].map((r) => ({ record: r, allocator: null }))

  it('by function: records of one function and object share the answer', () => {
    const supps = parseSuppressions('{\n by-fn\n Memcheck:Leak\n fun:malloc\n fun:make\n}\n', 'a.supp')
    const { kept, suppressed } = applySuppressions(sites, supps, false)
    expect(kept.map((r) => r.stack[0]!.fn)).toEqual(['other'])
    expect(suppressed).toEqual({ bytes: 48, blocks: 3 })
  })

  it('by source line: records of one function apart by line are told apart', () => {
    const supps = parseSuppressions('{\n by-line\n Memcheck:Leak\n fun:malloc\n src:a.c:2\n}\n', 'a.supp')
    const { kept, suppressed } = applySuppressions(sites, supps, false)
    expect(kept.map((r) => [r.stack[0]!.fn, r.stack[0]!.line])).toEqual([['make', 1]])
    expect(suppressed).toEqual({ bytes: 48, blocks: 3 })
    // the same list again (a test case's records after the exit's): the same answers
    expect(applySuppressions(sites, supps, false).kept).toEqual(kept)
  })
})

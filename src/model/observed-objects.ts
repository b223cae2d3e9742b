import type { HeapTotals } from './types.js'

/** A loaded object's code range, by its path. */
export interface ObjectRange {
  lo: number
  hi: number
  path: string
}

/** Counts of one stack's blocks: allocations, frees, bytes allocated. */
type Counts = [number, number, number]

/**
 * Counts by test case and allocation stack, for a run that observes only some objects (a Node
 * addon inside Node): every block is tracked, so the leak scan sees the whole heap, but only
 * the blocks whose allocation stack passes through an observed object are the program's figures.
 * Which stacks those are is known at the end, when every object has been reported.
 */
export class StackTallies {
  /** test index (-1 outside any) -> stack id -> counts */
  private readonly byTest = new Map<number, Map<number, Counts>>()

  add(test: number, stack: number, allocations: number, frees: number, bytes: number): void {
    let stacks = this.byTest.get(test)
    if (!stacks) this.byTest.set(test, (stacks = new Map()))
    const counts = stacks.get(stack)
    if (counts) {
      counts[0] += allocations
      counts[1] += frees
      counts[2] += bytes
    } else {
      stacks.set(stack, [allocations, frees, bytes])
    }
  }

  /** The totals of the stacks `observed` keeps: of the whole run, and of each test case by index. */
  totals(observed: (stack: number) => boolean): { run: HeapTotals; tests: Map<number, HeapTotals> } {
    const run: HeapTotals = { allocations: 0, frees: 0, bytesAllocated: 0 }
    const tests = new Map<number, HeapTotals>()
    for (const [test, stacks] of this.byTest) {
      const own: HeapTotals = { allocations: 0, frees: 0, bytesAllocated: 0 }
      for (const [stack, [allocations, frees, bytes]] of stacks) {
        if (!observed(stack)) continue
        own.allocations += allocations
        own.frees += frees
        own.bytesAllocated += bytes
      }
      run.allocations += own.allocations
      run.frees += own.frees
      run.bytesAllocated += own.bytesAllocated
      tests.set(test, own)
    }
    return { run, tests }
  }
}

/**
 * Whether a stack (raw return addresses) has a frame in an object whose path one of `patterns`
 * matches: the addon's own calls, templates that resolve to another object's copy, the libraries
 * it calls and the work it runs on a thread pool all have the addon's code on the stack.
 */
export function observedStack(objects: ObjectRange[], patterns: RegExp[]): (pcs: number[]) => boolean {
  const chosen = objects.filter((o) => patterns.some((p) => new RegExp(p.source, p.flags.replace(/[gy]/g, '')).test(o.path)))
  return (pcs) => pcs.some((pc) => chosen.some((o) => pc >= o.lo && pc < o.hi))
}

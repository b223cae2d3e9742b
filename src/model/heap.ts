import { classifyBlocks, type MemoryImage, type ScanBlock } from './leak-scan.js'
import {
  emptyLeakSummary,
  type Frame,
  type HeapTotals,
  type LeakKind,
  type LeakRecord,
  type LeakSummary,
  type TestCaseSummary,
} from './types.js'

/** A block the program holds: its size, where it was allocated, during which test case. */
export interface LiveBlock extends ScanBlock {
  stack: number
  /** Index into the model's test cases, or -1 outside any. */
  test: number
  /** Made by realloc (a suppression's allocator frame is then `realloc`, not any of the malloc family). */
  realloc?: true
}

/** A live block and its kind at one moment. */
export interface ClassifiedBlock {
  block: LiveBlock
  kind: LeakKind
}

/** A loss record and what a suppression needs beside it: the allocator heapspec dropped from its stack. */
export interface LossSite {
  record: LeakRecord
  /** The outermost allocator frame dropped (`operator new(unsigned long)`), `realloc`, or null (the malloc family). */
  allocator: string | null
}

interface TestCaseState extends TestCaseSummary {
  running: boolean
  /** The test's own blocks live at its end, with their kinds then (no image at its end: undefined). */
  atEnd?: ClassifiedBlock[]
}

/** How many frames a stack keeps once allocator frames are gone: memcheck's --num-callers. */
export const STACK_DEPTH = 12

/**
 * Functions that are part of the allocator, not the program's call: a stack starts at their caller,
 * as memcheck's does (it replaces these functions, so they never appear in its stacks).
 */
const ALLOCATOR_FRAMES = /^(operator new|operator delete|__libc_reallocarray$|reallocarray$|__GI___libc_reallocarray$)/

/**
 * The heap model: allocation events in, live blocks, totals and per-test figures out. Counting
 * follows memcheck so both backends agree: every successful malloc-family call is an allocation,
 * every free of a live block a free, a realloc one of each (memcheck's realloc always moves the
 * block), free(NULL) nothing.
 */
export class HeapModel {
  readonly live = new Map<number, LiveBlock>()
  readonly totals: HeapTotals = { allocations: 0, frees: 0, bytesAllocated: 0 }
  readonly tests: TestCaseState[] = []
  readonly warnings: string[] = []
  /** Frees of addresses the model never saw allocated (before capture began, or invalid). */
  unknownFrees = 0
  private readonly stacks: number[][] = []
  private current = -1

  /** Records stack `id` as raw return addresses, innermost first. */
  defineStack(id: number, pcs: number[]): void {
    this.stacks[id] = pcs
  }

  /** The raw return addresses of stack `id`. */
  stack(id: number): number[] {
    return this.stacks[id] ?? []
  }

  /** Every distinct return address of every stack, for symbolizing once at the end. */
  allPcs(): Set<number> {
    const pcs = new Set<number>()
    for (const stack of this.stacks) for (const pc of stack ?? []) pcs.add(pc)
    return pcs
  }

  allocate(addr: number, size: number, stack: number): void {
    this.totals.allocations++
    this.totals.bytesAllocated += size
    const test = this.tests[this.current]
    if (test) {
      test.allocations++
      test.bytesAllocated += size
    }
    this.live.set(addr, { start: addr, size, stack, test: this.current })
  }

  /**
   * Blocks an observer counted without sending them, because each was freed before the next
   * test-case boundary: they add to the counts of the test case running now, and need no tracking.
   */
  tally(allocations: number, frees: number, bytes: number): void {
    this.totals.allocations += allocations
    this.totals.frees += frees
    this.totals.bytesAllocated += bytes
    const test = this.tests[this.current]
    if (test) {
      test.allocations += allocations
      test.frees += frees
      test.bytesAllocated += bytes
    }
  }

  /** Returns false when `addr` was not a live block. */
  free(addr: number): boolean {
    if (!this.live.delete(addr)) {
      this.unknownFrees++
      return false
    }
    this.totals.frees++
    const test = this.tests[this.current]
    if (test) test.frees++
    return true
  }

  reallocate(old: number, addr: number, size: number, stack: number): void {
    if (addr === 0) {
      // realloc(p, 0) frees p and returns NULL; a failed realloc leaves p alone
      if (size === 0 && old !== 0) this.free(old)
      return
    }
    if (old !== 0) this.free(old)
    this.allocate(addr, size, stack)
    this.live.get(addr)!.realloc = true
  }

  /** A test case starts: allocations from now on are its own, whichever thread makes them. */
  beginTest(name: string): void {
    if (this.current >= 0) {
      const running = this.tests[this.current]!
      this.warnings.push(`test case "${name}" began while "${running.name}" was still running; "${running.name}" ends here`)
      running.running = false
    }
    this.tests.push({ name, allocations: 0, frees: 0, bytesAllocated: 0, leakSummary: emptyLeakSummary(), running: true })
    this.current = this.tests.length - 1
  }

  /**
   * A test case ends: its blocks are classified as they stand now, for `testVerdicts` to weigh
   * against the exit scan. `image` is the memory at this moment; without one (left by longjmp)
   * the test's leaks are those of the exit scan alone.
   */
  endTest(name: string, image: MemoryImage | undefined): void {
    const test = this.tests[this.current]
    if (!test) {
      this.warnings.push(`test case "${name}" ended but never began`)
      return
    }
    if (test.name !== name) this.warnings.push(`test case "${test.name}" ended as "${name}"`)
    test.running = false
    if (image) {
      test.atEnd = this.classify(image).filter(({ block }) => block.test === this.current)
      test.leakSummary = emptyLeakSummary()
      for (const { block, kind } of test.atEnd) {
        test.leakSummary[kind].bytes += block.size
        test.leakSummary[kind].blocks++
      }
    }
    this.current = -1
  }

  /**
   * What each test case answers for, by index: every block it allocated that was lost at its end
   * or is still live and lost at exit (the exit's kind when lost at exit, else the kind at its
   * end), and the blocks reachable at its end that are not lost at exit. `atExit` is the exit scan
   * (undefined when the program was never scanned at its end: the test ends' kinds stand).
   */
  testVerdicts(atExit: ClassifiedBlock[] | undefined): ClassifiedBlock[][] {
    return testVerdicts(this.tests.length, this.tests.map((t) => t.atEnd), atExit)
  }

  /** The kind of every live block, given the memory image at this moment. */
  classify(image: MemoryImage): { block: LiveBlock; kind: LeakKind }[] {
    const blocks = [...this.live.values()]
    const kinds = classifyBlocks(blocks, image)
    return blocks.map((block, i) => ({ block, kind: kinds[i]! }))
  }

  /** The test case summaries, in the order the test cases began. */
  testSummaries(): TestCaseSummary[] {
    return this.tests.map(({ running: _running, atEnd: _atEnd, ...summary }) => summary)
  }

  /**
   * Groups classified blocks into loss records, one per (kind, test, stack), biggest first, with
   * stacks resolved through `symbol` and started at the allocator's caller.
   */
  lossRecords(classified: ClassifiedBlock[], symbol: (pc: number) => Frame): LeakRecord[] {
    return this.lossSites(classified, symbol).map((s) => s.record)
  }

  /** `lossRecords`, each with the allocator its stack started in (what a suppression's first frame names). */
  lossSites(classified: ClassifiedBlock[], symbol: (pc: number) => Frame): LossSite[] {
    const resolved = new Map<number, { stack: Frame[]; allocator: string | null }>()
    const frames = (id: number): { stack: Frame[]; allocator: string | null } => {
      let site = resolved.get(id)
      if (!site) {
        let stack = this.stack(id).map(symbol)
        let allocator: string | null = null
        while (stack.length > 1 && ALLOCATOR_FRAMES.test(stack[0]!.fn ?? '')) allocator = stack.shift()!.fn
        stack = stack.slice(0, STACK_DEPTH)
        site = { stack, allocator }
        resolved.set(id, site)
      }
      return site
    }
    const records = new Map<string, LossSite>()
    for (const { block, kind } of classified) {
      const { stack, allocator } = frames(block.stack)
      const test = this.tests[block.test]?.name ?? null
      // Stacks that differ only inside the allocator are one allocation site: key on the frames kept.
      const key = `${kind}\0${test}\0${stack.map((f) => f.pc).join(',')}`
      const site = records.get(key)
      if (site) {
        site.record.bytes += block.size
        site.record.blocks++
      } else {
        records.set(key, { record: { kind, bytes: block.size, blocks: 1, test, stack }, allocator: allocator ?? (block.realloc ? 'realloc' : null) })
      }
    }
    return [...records.values()].sort((a, b) => compareRecords(a.record, b.record))
  }
}

/** Kinds that make a block lost, as memcheck's `leak_check` counts them. */
const LOST: ReadonlySet<LeakKind> = new Set(['definite', 'indirect', 'possible'])

/**
 * The rule of which blocks a test case answers for, on blocks known by identity (any key type, so
 * a backend that knows blocks by address can use it): per test case (by index), each of its blocks
 * lost at its end or still live and lost at exit, with the exit's kind when lost at exit, else the
 * kind at its end; then its blocks reachable at its end and not lost at exit, as reachable (a
 * block kept by one test case and freed by a later one is no leak of either).
 */
export function testVerdicts<B extends { test: number }>(
  count: number,
  atEnd: ({ block: B; kind: LeakKind }[] | undefined)[],
  atExit: { block: B; kind: LeakKind }[] | undefined,
): { block: B; kind: LeakKind; at: 'end' | 'exit' }[][] {
  const out: { block: B; kind: LeakKind; at: 'end' | 'exit' }[][] = Array.from({ length: count }, () => [])
  const exitKind = new Map<B, LeakKind>()
  for (const { block, kind } of atExit ?? []) exitKind.set(block, kind)
  const seen = new Set<B>()
  for (let t = 0; t < count; t++) {
    for (const { block, kind } of atEnd[t] ?? []) {
      seen.add(block)
      const atExitKind = exitKind.get(block)
      if (atExitKind !== undefined && LOST.has(atExitKind)) out[t]!.push({ block, kind: atExitKind, at: 'exit' })
      // lost at its end; or reachable then (kept, perhaps for a later test case to free: no leak)
      else out[t]!.push({ block, kind, at: 'end' })
    }
  }
  for (const { block, kind } of atExit ?? []) {
    if (seen.has(block) || block.test < 0 || block.test >= count || !LOST.has(kind)) continue
    out[block.test]!.push({ block, kind, at: 'exit' })
  }
  return out
}

/** Report order: biggest first, as memcheck lists them last-is-biggest. */
function compareRecords(a: LeakRecord, b: LeakRecord): number {
  return b.bytes - a.bytes || b.blocks - a.blocks || a.kind.localeCompare(b.kind)
}

/** Loss records in report order: biggest first, as memcheck lists them last-is-biggest. */
export function sortRecords(records: LeakRecord[]): LeakRecord[] {
  return records.sort(compareRecords)
}

/** Adds up loss records by kind. */
export function summarize(records: LeakRecord[]): LeakSummary {
  const summary = emptyLeakSummary()
  for (const record of records) {
    summary[record.kind].bytes += record.bytes
    summary[record.kind].blocks += record.blocks
  }
  return summary
}

import { HeapModel, sortRecords } from '../../model/heap.js'
import { emptyLeakSummary, type HeapTotals, type LeakRecord, type LeakSummary, type TestCaseSummary } from '../../model/types.js'
import type { BlockListing, ListedBlock } from './block-list.js'

/** A live block heapspec has seen in a listing, and the test case that allocated it (-1: none). */
interface OwnedBlock {
  size: number
  stack: string
  test: number
}

/**
 * Per-test figures from memcheck's own data, taken at each test-case boundary: the heap totals
 * (xtree) and the live blocks (leak search + block list).
 *
 * A block belongs to the test case that was running in the interval in which it first appeared in
 * a listing; since every boundary has a listing (or nothing was allocated since the last one), that
 * is the test case running when it was allocated, whichever thread allocated it. A block is known
 * by its address, size and allocation stack: memcheck does not hand out a freed block's address
 * again until --freelist-vol bytes (20 MB) have been freed after it, so within one interval a new
 * block at an old block's address, of its size, from its stack, is not expected.
 *
 * The test-case bookkeeping (nesting, names, the warnings for markers out of order) is the heap
 * model's, as in the GDB backend; this class only adds what memcheck tells about each interval.
 */
export class TestCaseAttribution {
  private readonly model = new HeapModel()
  private owners = new Map<number, OwnedBlock>()
  private totals: HeapTotals | undefined
  private exitListing: BlockListing | undefined
  private lastListing: BlockListing | undefined
  private readonly problems: string[] = []

  /** A test case begins. `listing` is undefined when nothing was allocated or freed since the last one. */
  begin(name: string, totals: HeapTotals, listing: BlockListing | undefined): void {
    this.interval(totals, listing)
    this.model.beginTest(name)
  }

  /** A test case ends: its leaks are its own blocks in `listing`, by the kind memcheck gave them. */
  end(name: string, totals: HeapTotals, listing: BlockListing): void {
    const running = this.interval(totals, listing)
    const summary = running >= 0 ? this.leakSummary(running, listing) : undefined
    this.model.endTest(name, undefined)
    if (summary) this.model.tests[running]!.leakSummary = summary
  }

  /** A test case was left by longjmp or an exception: its counts stand, no leak verdict. */
  leave(name: string, totals: HeapTotals, listing: BlockListing): void {
    this.interval(totals, listing)
    this.model.endTest(name, undefined)
  }

  /**
   * The program has ended: `listing` is the heap memcheck's final leak check is about to classify,
   * undefined when nothing was allocated or freed since the last listing, which then stands in.
   */
  exit(totals: HeapTotals, listing: BlockListing | undefined): void {
    this.interval(totals, listing)
    this.exitListing = listing ?? this.lastListing
  }

  /** The test cases in the order they began. */
  summaries(): TestCaseSummary[] {
    return this.model.testSummaries()
  }

  /** Marker misuse (the heap model's wording) and blocks that could not be attributed. */
  get warnings(): string[] {
    return [...this.model.warnings, ...this.problems]
  }

  /**
   * memcheck's final loss records, each split by the test case that allocated its blocks. A loss
   * record's blocks are found in the listing taken at the program's end, by allocation stack and
   * kind; without that listing (the program was killed) the last listing stands in.
   */
  attribute(leaks: LeakRecord[]): LeakRecord[] {
    const listing = this.exitListing
    const byStack = new Map<string, { kind: string; block: ListedBlock }[]>()
    if (listing) {
      for (const record of listing.records) {
        const list = byStack.get(record.stack) ?? []
        for (const block of record.blocks) list.push({ kind: record.kind, block })
        byStack.set(record.stack, list)
      }
    } else {
      for (const [address, owned] of this.owners) {
        const list = byStack.get(owned.stack) ?? []
        list.push({ kind: '', block: { address, size: owned.size } })
        byStack.set(owned.stack, list)
      }
    }
    const out: LeakRecord[] = []
    for (const leak of leaks) {
      const stack = leak.stack.map((f) => f.pc ?? '').join(',')
      const candidates = byStack.get(stack) ?? []
      const sameKind = candidates.filter((c) => c.kind === leak.kind)
      const owner = (address: number): number => this.owners.get(address)?.test ?? -1
      if (sameKind.length === leak.blocks && sameKind.reduce((sum, c) => sum + c.block.size, 0) === leak.bytes) {
        // By name, as the GDB backend groups them: a test case run twice is one in the report.
        const parts = new Map<string | null, { bytes: number; blocks: number }>()
        for (const { block } of sameKind) {
          const test = this.testName(owner(block.address))
          const part = parts.get(test) ?? { bytes: 0, blocks: 0 }
          part.bytes += block.size
          part.blocks++
          parts.set(test, part)
        }
        for (const [test, part] of parts) out.push({ ...leak, ...part, test })
        continue
      }
      // The final heap differs from the listing (the program was killed, or a register kept a block
      // reachable at the last stop): attribute the record whole when its stack has one owner.
      const owners = new Set(candidates.map((c) => this.testName(owner(c.block.address))))
      if (candidates.length === 0) owners.add(this.testName(this.runningTest()))
      if (owners.size === 1) {
        out.push({ ...leak, test: [...owners][0]! })
      } else {
        out.push({ ...leak, test: null })
        this.problems.push(
          `${leak.bytes} bytes in ${leak.blocks} blocks (${leak.kind}, allocated at ${leak.stack[0]?.fn ?? '???'}) were allocated from the same place by several test cases and could not be attributed to one`,
        )
      }
    }
    return sortRecords(out)
  }

  private testName(index: number): string | null {
    return this.model.tests[index]?.name ?? null
  }

  private runningTest(): number {
    return this.model.tests.findIndex((t) => t.running)
  }

  /**
   * Closes the interval since the last boundary: its allocations and frees go to the test case that
   * ran in it, and the blocks that appeared in it become that test case's. Returns that test case.
   */
  private interval(totals: HeapTotals, listing: BlockListing | undefined): number {
    const running = this.runningTest()
    if (this.totals) {
      this.model.tally(totals.allocations - this.totals.allocations, totals.frees - this.totals.frees, totals.bytesAllocated - this.totals.bytesAllocated)
    }
    this.totals = totals
    if (listing) {
      this.lastListing = listing
      const owners = new Map<number, OwnedBlock>()
      for (const record of listing.records) {
        for (const block of record.blocks) {
          const known = this.owners.get(block.address)
          const same = known !== undefined && known.size === block.size && known.stack === record.stack
          owners.set(block.address, same ? known : { size: block.size, stack: record.stack, test: running })
        }
      }
      this.owners = owners
    }
    return running
  }

  private leakSummary(test: number, listing: BlockListing): LeakSummary {
    const summary = emptyLeakSummary()
    for (const record of listing.records) {
      if (!record.shown) continue // suppressed: memcheck does not report it, nor does the run
      for (const block of record.blocks) {
        if (this.owners.get(block.address)?.test !== test) continue
        summary[record.kind].bytes += block.size
        summary[record.kind].blocks++
      }
    }
    return summary
  }
}

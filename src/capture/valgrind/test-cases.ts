import { HeapModel, sortRecords, summarize, testVerdicts } from '../../model/heap.js'
import { formatSuppression } from '../../model/suppressions.js'
import type { Amount, Frame, HeapTotals, LeakKind, LeakRecord, TestCaseSummary } from '../../model/types.js'
import type { BlockListing, ListedBlock, ListedRecord } from './block-list.js'

/** A live block heapspec has seen in a listing, and the test case that allocated it (-1: none). */
interface OwnedBlock {
  size: number
  stack: string
  test: number
}

/** One of a test case's blocks at one moment: its kind, and the record memcheck listed it in. */
interface SeenBlock {
  block: OwnedBlock
  kind: LeakKind
  record: ListedRecord
}

/**
 * Which final loss record (`leaks`) each block listed at the program's end is in. A record takes
 * the listed blocks of its stack: those of its kind when they add up to it, else all of them (a
 * block a register kept reachable at the last stop is lost in the final check). A block in no
 * record was suppressed.
 */
function finalRecords<T>(listed: T[], of: (item: T) => { stack: string; kind: LeakKind; size: number }, leaks: LeakRecord[]): Map<T, LeakRecord> {
  const byStack = new Map<string, T[]>()
  for (const item of listed) {
    const stack = of(item).stack
    const list = byStack.get(stack) ?? []
    list.push(item)
    byStack.set(stack, list)
  }
  const out = new Map<T, LeakRecord>()
  const total = (list: T[]): number => list.reduce((sum, item) => sum + of(item).size, 0)
  for (const leak of leaks) {
    const free = (byStack.get(leak.stack.map((f) => f.pc ?? '').join(',')) ?? []).filter((item) => !out.has(item))
    const same = free.filter((item) => of(item).kind === leak.kind)
    const chosen = same.length === leak.blocks && total(same) === leak.bytes ? same : free.length === leak.blocks && total(free) === leak.bytes ? free : []
    for (const item of chosen) out.set(item, leak)
  }
  return out
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
  /** Each test case's own blocks at its end (by index; undefined for a test case left without a verdict). */
  private readonly atEnd: (SeenBlock[] | undefined)[] = []

  /** A test case begins. `listing` is undefined when nothing was allocated or freed since the last one. */
  begin(name: string, totals: HeapTotals, listing: BlockListing | undefined): void {
    this.interval(totals, listing)
    this.model.beginTest(name)
  }

  /** A test case ends: its own blocks in `listing`, by the kind memcheck gave them, weighed against the exit's by `summaries`. */
  end(name: string, totals: HeapTotals, listing: BlockListing): void {
    const running = this.interval(totals, listing)
    if (running >= 0) this.atEnd[running] = this.blocksOf(listing).filter((b) => b.block.test === running)
    this.model.endTest(name, undefined)
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

  /**
   * The test cases in the order they began, each answering for its blocks lost at its end or at
   * exit, as the heap model's rule says (`testVerdicts`). `leaks` are memcheck's final loss records
   * (those it did not suppress): a block at exit in none of them was suppressed; their frames (from
   * the XML, with directories) name a record's stack, else the log's frames do.
   */
  summaries(leaks: LeakRecord[]): TestCaseSummary[] {
    const exit = this.exitKinds(leaks)
    const framesOf = new Map<string, Frame[]>()
    for (const leak of leaks) framesOf.set(leak.stack.map((f) => f.pc ?? '').join(','), leak.stack)
    const atExit = exit?.map(({ seen, kind }) => ({ block: seen.block, kind }))
    const count = this.model.tests.length
    const verdicts = testVerdicts(count, Array.from({ length: count }, (_, i) => this.atEnd[i]), atExit)
    const exitOf = new Map<OwnedBlock, { seen: SeenBlock; final: LeakRecord | undefined }>()
    for (const e of exit ?? []) exitOf.set(e.seen.block, e)
    const endOf = new Map<OwnedBlock, SeenBlock>()
    for (const seen of this.atEnd.flat()) if (seen) endOf.set(seen.block, seen)
    return this.model.testSummaries().map((summary, t) => {
      const records = new Map<string, LeakRecord>()
      const suppressed: Amount = { bytes: 0, blocks: 0 }
      for (const { block, kind, at } of verdicts[t]!) {
        const seen = at === 'exit' ? exitOf.get(block)!.seen : endOf.get(block)!
        const final = at === 'exit' ? exitOf.get(block)!.final : undefined
        // suppressed: not shown in the full listing at its end, or in no final loss record at exit
        if (at === 'end' ? !seen.record.shown : final === undefined) {
          suppressed.bytes += block.size
          suppressed.blocks++
          continue
        }
        const key = `${kind}\0${block.stack}`
        const record = records.get(key)
        if (record) {
          record.bytes += block.size
          record.blocks++
          continue
        }
        // the XML's frames (with directories) where memcheck listed the stack at exit, else the log's
        const stack: Frame[] = final?.stack ?? framesOf.get(block.stack) ?? seen.record.frames ?? []
        const suppression = final?.suppression ?? formatSuppression(kind, seen.record.allocator ?? null, stack)
        records.set(key, { kind, bytes: block.size, blocks: 1, test: summary.name, stack, suppression })
      }
      const own = sortRecords([...records.values()])
      return { ...summary, leakSummary: summarize(own), leaks: own, suppressed }
    })
  }

  /**
   * The blocks at the program's end with their final kinds: memcheck's final loss records (`leaks`)
   * decide, found in the listing at the end by stack (by kind first; a block a register kept
   * reachable at the last stop is lost in the final check). A listed block in no final record was
   * suppressed (`final` undefined). Undefined without a listing at the end.
   */
  private exitKinds(leaks: LeakRecord[]): { seen: SeenBlock; kind: LeakKind; final: LeakRecord | undefined }[] | undefined {
    if (!this.exitListing) return undefined
    const listed = this.blocksOf(this.exitListing)
    const finals = finalRecords(listed, (seen) => ({ stack: seen.block.stack, kind: seen.kind, size: seen.block.size }), leaks)
    return listed.map((seen) => {
      const final = finals.get(seen)
      return { seen, kind: final?.kind ?? seen.kind, final }
    })
  }

  /**
   * What memcheck's final leak check suppressed, as its `suppressed:` line counts it: the blocks at
   * the program's end in no final loss record (`leaks`), found as exitKinds finds them; undefined
   * without a listing at the end.
   */
  suppressedAtExit(leaks: LeakRecord[]): Amount | undefined {
    if (!this.exitListing) return undefined
    const listed = this.exitListing.records.flatMap((record) => record.blocks.map((block) => ({ record, block })))
    const finals = finalRecords(listed, ({ record, block }) => ({ stack: record.stack, kind: record.kind, size: block.size }), leaks)
    const suppressed: Amount = { bytes: 0, blocks: 0 }
    for (const item of listed) {
      if (finals.has(item)) continue
      suppressed.bytes += item.block.size
      suppressed.blocks++
    }
    return suppressed
  }

  /** Every block of a listing heapspec knows the owner of, with its kind and record. */
  private blocksOf(listing: BlockListing): SeenBlock[] {
    const out: SeenBlock[] = []
    for (const record of listing.records) {
      for (const { address } of record.blocks) {
        const block = this.owners.get(address)
        if (block) out.push({ block, kind: record.kind, record })
      }
    }
    return out
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
          const test = this.nameOf(owner(block.address))
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
      const owners = new Set(candidates.map((c) => this.nameOf(owner(c.block.address))))
      if (candidates.length === 0) owners.add(this.nameOf(this.runningTest()))
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

  /** A test case's name by its index in the order they began (-1, or past the end: null). */
  nameOf(index: number): string | null {
    return this.model.tests[index]?.name ?? null
  }

  /** The index of the test case running now (-1: none). */
  get running(): number {
    return this.runningTest()
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

}

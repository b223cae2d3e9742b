import { blockAt, BlockTable, NEW_OPERATORS, OPERATOR_NEW, REALLOC, type BlockColumns, type LiveBlock } from './block-table.js'
import { classifyColumns, type MemoryImage } from './leak-scan.js'
import { HeapSeriesSampler, PeakTracker, type StackAmount } from './peaks.js'
import {
  emptyLeakSummary,
  LEAK_KINDS,
  type Frame,
  type HeapTotals,
  type LeakKind,
  type LeakRecord,
  type LeakSummary,
  type PeakSite,
  type TestCaseSummary,
} from './types.js'

export type { LiveBlock } from './block-table.js'

/** A live block and its kind at one moment. */
export interface ClassifiedBlock {
  block: LiveBlock
  kind: LeakKind
}

/**
 * Live blocks the model never held one by one, summed by stack, allocator, test case and kind: an
 * observer's scan at the end sends the blocks it had not sent yet so (the preload interposer's U
 * line). Row i: `blocks[i]` blocks of `bytes[i]` bytes in all, the first allocated at `seqs[i]`.
 */
export interface BlockGroups {
  stacks: number[]
  tests: number[]
  codes: number[]
  bytes: number[]
  blocks: number[]
  seqs: number[]
  /** As BlockColumns' reallocs. */
  allocators: number[]
}

export function emptyGroups(): BlockGroups {
  return { stacks: [], tests: [], codes: [], bytes: [], blocks: [], seqs: [], allocators: [] }
}

/**
 * Every live block's kind at one moment, as columns: iterating makes each block's object as it
 * goes, so millions of reachable blocks at exit cost no object that outlives its loss record.
 * `groups` are blocks known only by their sums (no test case's: iterating leaves them out, and
 * loss records count them).
 */
export class Classification implements Iterable<ClassifiedBlock> {
  constructor(
    readonly columns: BlockColumns,
    /** Each row's kind, as its index in LEAK_KINDS. */
    readonly codes: Uint8Array,
    readonly groups?: BlockGroups,
  ) {}

  *[Symbol.iterator](): Iterator<ClassifiedBlock> {
    for (let i = 0; i < this.columns.count; i++) yield { block: blockAt(this.columns, i), kind: LEAK_KINDS[this.codes[i]!]! }
  }

  /** The blocks one test case allocated, as objects. */
  ofTest(test: number): ClassifiedBlock[] {
    const out: ClassifiedBlock[] = []
    for (let i = 0; i < this.columns.count; i++) if (this.columns.tests[i] === test) out.push({ block: blockAt(this.columns, i), kind: LEAK_KINDS[this.codes[i]!]! })
    return out
  }

  /** The blocks allocated inside a test case (of the first `count`), as objects: a fixture made outside them costs none. */
  inTests(count: number): ClassifiedBlock[] {
    const out: ClassifiedBlock[] = []
    const tests = this.columns.tests
    for (let i = 0; i < this.columns.count; i++) if (tests[i]! >= 0 && tests[i]! < count) out.push({ block: blockAt(this.columns, i), kind: LEAK_KINDS[this.codes[i]!]! })
    return out
  }
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

/** A test case's peaks as the model keeps them beside its summary. */
interface TestPeakState {
  /** Its own blocks' high-water mark, from the events. */
  own: PeakTracker
  /** The whole heap's most while it ran, from the events. */
  heapBytes: number
  /** The event count (allocations and frees) when it began and ended: its span in the heap series. */
  from: number
  to: number | undefined
  /** The observer's own figures (the preload interposer keeps them): they stand over the events'. */
  observed?: { bytes: number; heapBytes: number; sites: StackAmount[] }
}

/** The peaks of a run, by stack id, as the model holds them (sites unresolved). */
export interface ModelPeaks {
  run: { bytes: number; sites: StackAmount[] }
  tests: { bytes: number; heapBytes: number; sites: StackAmount[] }[]
  /** Live heap bytes by event count, and each test case's span in events. */
  series: { points: [number, number][]; spans: { from: number; to: number }[] }
}

/** How many allocation sites a peak names at most (its biggest). */
export const PEAK_SITES = 10

/** How many frames a stack keeps once allocator frames are gone: memcheck's --num-callers. */
export const STACK_DEPTH = 12

/**
 * How many return addresses every backend looks through for a chosen object's code (the
 * `objects` option): the preload interposer and the GDB observer keep 16 per stack, so memcheck
 * is asked for as many, or the backends would disagree on a block allocated deep below the addon.
 */
export const OBSERVED_DEPTH = 16

/**
 * Functions that are part of the allocator, not the program's call: a stack starts at their caller,
 * as memcheck's does (it replaces these functions, so they never appear in its stacks).
 */
const ALLOCATOR_FRAMES = /^(operator new|operator delete|__libc_reallocarray$|reallocarray$|__GI___libc_reallocarray$)/

/**
 * A stack as memcheck shows it: from the allocator's caller (the allocator frames dropped, the
 * outermost of them returned), above main, at most STACK_DEPTH frames.
 */
export function callerStack(frames: Frame[]): { stack: Frame[]; allocator: string | null } {
  // one slice of the frames kept: 100,000 sites made three arrays each
  let start = 0
  let allocator: string | null = null
  while (frames.length - start > 1 && ALLOCATOR_FRAMES.test(frames[start]!.fn ?? '')) allocator = frames[start++]!.fn
  let end = frames.length
  for (let i = start; i < end; i++) if (isMain(frames[i]!.fn)) end = i + 1
  return { stack: frames.slice(start, Math.min(end, start + STACK_DEPTH)), allocator }
}

/**
 * The heap model: allocation events in, live blocks, totals and per-test figures out. Counting
 * follows memcheck so both backends agree: every successful malloc-family call is an allocation,
 * every free of a live block a free, a realloc one of each (memcheck's realloc always moves the
 * block), free(NULL) nothing.
 */
export class HeapModel {
  readonly live = new BlockTable()
  readonly totals: HeapTotals = { allocations: 0, frees: 0, bytesAllocated: 0 }
  readonly tests: TestCaseState[] = []
  readonly warnings: string[] = []
  /** Frees of addresses the model never saw allocated (before capture began, or invalid). */
  unknownFrees = 0
  private readonly stacks: number[][] = []
  private current = -1
  /** The whole heap's high-water mark and its series, from the events. */
  private readonly heapPeak = new PeakTracker()
  private readonly series = new HeapSeriesSampler()
  private readonly testPeaks: TestPeakState[] = []
  /** The observer's own run peak and series (preload's), which stand over the events'. */
  private observedRun: { bytes: number; sites: StackAmount[] } | undefined
  private observedSeries: [number, number][] | undefined

  /** Per test index, the first test case of its name: test cases of one name share records. Grown as tests begin. */
  private readonly firstOfName: number[] = []
  private readonly namedFirst = new Map<string, number>()

  private testKeys(): number[] {
    for (let i = this.firstOfName.length; i < this.tests.length; i++) {
      const name = this.tests[i]!.name
      let first = this.namedFirst.get(name)
      if (first === undefined) this.namedFirst.set(name, (first = i))
      this.firstOfName.push(first)
    }
    return this.firstOfName
  }

  /** The index of the test case running now, or -1 outside any. */
  get runningTest(): number {
    return this.current
  }

  /** Records stack `id` as raw return addresses, innermost first. */
  defineStack(id: number, pcs: number[]): void {
    if (this.stacks[id] === undefined) this.stackCount++
    this.stacks[id] = pcs
  }

  /** How many stacks the observer defined. */
  stackCount = 0

  /** The raw return addresses of stack `id`. */
  stack(id: number): number[] {
    return this.stacks[id] ?? []
  }

  /** Every distinct return address of every stack (or of those `keep` keeps), for symbolizing once at the end. */
  allPcs(keep?: (stack: number) => boolean): Set<number> {
    const pcs = new Set<number>()
    this.stacks.forEach((stack, id) => {
      if (!keep || keep(id)) for (const pc of stack) pcs.add(pc)
    })
    return pcs
  }

  /**
   * `allocator`: the block's operator new as a column holds it (OPERATOR_NEW + i), REALLOC, 0 for
   * the malloc family; `seq`: its place in allocation order, when the observer numbered it (see
   * `reserveSeqs`), else the next.
   */
  allocate(addr: number, size: number, stack: number, allocator = 0, seq?: number): void {
    this.totals.allocations++
    this.totals.bytesAllocated += size
    const test = this.tests[this.current]
    if (test) {
      test.allocations++
      test.bytesAllocated += size
    }
    if (this.live.set(addr, size, stack, this.current, allocator, seq)) {
      const { size: oldSize, stack: oldStack, test: oldTest } = this.live.removed
      this.left(oldSize, oldStack, oldTest, false)
    }
    if (this.observerPeaks) return
    this.heapPeak.change(stack, size, 1)
    const peaks = this.testPeaks[this.current]
    if (peaks) {
      if (this.heapPeak.total > peaks.heapBytes) peaks.heapBytes = this.heapPeak.total
      peaks.own.change(stack, size, 1)
    }
    this.series.note(this.heapPeak.total)
  }

  /**
   * The observer keeps the peaks and the heap series itself (the preload interposer: P, Q and G
   * lines): the model stops following them (a fixture of 100,000 blocks: ~5% of the run's CPU).
   */
  peaksObserved(): void {
    this.observerPeaks = true
  }

  private observerPeaks = false

  /**
   * A batch of `count` blocks is coming, numbered by the observer over `span` places: room for
   * them, and the first place in allocation order (see BlockTable.reserveSeqs).
   */
  reserveBatch(count: number, span: number): number {
    this.live.reserve(count)
    return this.live.reserveSeqs(span)
  }

  /** A block leaves the live set (`event`: a free the counts count, not a block replaced unseen). */
  private left(size: number, stack: number, test: number, event: boolean): void {
    if (this.observerPeaks) return
    this.heapPeak.change(stack, -size, -1)
    if (test >= 0 && test === this.current) this.testPeaks[test]!.own.change(stack, -size, -1)
    if (event) this.series.note(this.heapPeak.total)
  }

  /** The allocations and frees counted so far: the heap series' time. */
  private get events(): number {
    return this.totals.allocations + this.totals.frees
  }

  /**
   * Allocations and frees an observer counted without sending their blocks one by one: blocks
   * freed before the next test-case boundary (N lines), or live ones sent as sums (U lines). They
   * add to the counts of the test case running now, and need no tracking.
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
    const { size, stack, test: owner } = this.live.removed
    this.left(size, stack, owner, true)
    return true
  }

  reallocate(old: number, addr: number, size: number, stack: number): void {
    if (addr === 0) {
      // realloc(p, 0) frees p and returns NULL; a failed realloc leaves p alone
      if (size === 0 && old !== 0) this.free(old)
      return
    }
    if (old !== 0) this.free(old)
    this.allocate(addr, size, stack, REALLOC)
  }

  /** A test case starts: allocations from now on are its own, whichever thread makes them. */
  beginTest(name: string): void {
    if (this.current >= 0) {
      const running = this.tests[this.current]!
      this.warnings.push(`test case "${name}" began while "${running.name}" was still running; "${running.name}" ends here`)
      running.running = false
      this.testPeaks[this.current]!.to = this.events
      this.testPeaks[this.current]!.own.finish()
    }
    this.tests.push({ name, allocations: 0, frees: 0, bytesAllocated: 0, leakSummary: emptyLeakSummary(), running: true })
    this.testPeaks.push({ own: new PeakTracker(), heapBytes: this.heapPeak.total, from: this.events, to: undefined })
    this.current = this.tests.length - 1
  }

  /**
   * The observer's own peaks for the test case running now (a P line: the preload interposer sees
   * blocks the model never does); the sites to fill, by stack.
   */
  observedTestPeak(bytes: number, heapBytes: number): StackAmount[] {
    const sites: StackAmount[] = []
    const peaks = this.testPeaks[this.current]
    if (peaks) peaks.observed = { bytes, heapBytes, sites }
    return sites
  }

  /** The observer's own peak of the whole run (a Q line); the sites to fill, by stack. */
  observedRunPeak(bytes: number): StackAmount[] {
    this.observedRun = { bytes, sites: [] }
    return this.observedRun.sites
  }

  /** The observer's own heap series (a G line), as [event, bytes] pairs. */
  observedHeapSeries(points: [number, number][]): void {
    this.observedSeries = points
  }

  /** The run's peaks and its heap series: the observer's where it sent them, else the events'. */
  peaks(): ModelPeaks {
    const end = this.events
    return {
      run: this.observedRun ?? { bytes: this.heapPeak.peak, sites: this.heapPeak.sites() },
      tests: this.testPeaks.map((t) => t.observed ?? { bytes: t.own.peak, heapBytes: t.heapBytes, sites: t.own.sites() }),
      series: { points: this.observedSeries ?? this.series.points(), spans: this.testPeaks.map((t) => ({ from: t.from, to: t.to ?? end })) },
    }
  }

  /**
   * A test case ends: its blocks are classified as they stand now, for `testVerdicts` to weigh
   * against the exit scan. `image` is the memory at this moment, the kinds of every live block, or
   * the test case's own live blocks with their kinds; without one (left by longjmp) the test's
   * leaks are those of the exit scan alone.
   */
  endTest(name: string, image: MemoryImage | Classification | ClassifiedBlock[] | undefined, columns?: BlockColumns): void {
    const test = this.tests[this.current]
    if (!test) {
      this.warnings.push(`test case "${name}" ended but never began`)
      return
    }
    if (test.name !== name) this.warnings.push(`test case "${test.name}" ended as "${name}"`)
    test.running = false
    this.testPeaks[this.current]!.to = this.events
    this.testPeaks[this.current]!.own.finish()
    if (image) {
      test.atEnd = Array.isArray(image) ? image : (image instanceof Classification ? image : this.classify(image, columns)).ofTest(this.current)
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
  testVerdicts(atExit: Iterable<ClassifiedBlock> | undefined): ClassifiedBlock[][] {
    // a block's objects differ from one image to the next: it is known by its allocation order
    const exit = atExit instanceof Classification ? atExit.inTests(this.tests.length) : atExit
    return testVerdicts(this.tests.length, this.tests.map((t) => t.atEnd), exit, (block) => block.seq)
  }

  /** The kind of every live block, given the memory image at this moment. */
  classify(image: MemoryImage, columns = this.live.columns()): Classification {
    return new Classification(columns, classifyColumns(columns, image))
  }

  /** The test case summaries, in the order the test cases began. */
  testSummaries(): TestCaseSummary[] {
    return this.tests.map(({ running: _running, atEnd: _atEnd, ...summary }) => summary)
  }

  /**
   * Groups classified blocks into loss records, one per (kind, test, stack), biggest first, with
   * stacks resolved through `symbol` and started at the allocator's caller.
   */
  lossRecords(classified: Iterable<ClassifiedBlock>, symbol: (pc: number) => Frame): LeakRecord[] {
    return this.lossSites(classified, symbol).map((s) => s.record)
  }

  /**
   * `lossRecords`, each with the allocator its stack started in (what a suppression's first frame
   * names). A Classification is grouped from its columns, with no object per block; `keep` then
   * picks the stacks that count.
   */
  lossSites(classified: Iterable<ClassifiedBlock> | Classification, symbol: (pc: number) => Frame, keep?: (stack: number) => boolean): LossSite[] {
    const { frames, site } = this.siteResolver(symbol)
    const testKey = this.testKeys()
    // a record is (site, test, kind): each site's records are a chain through `next`, from
    // `firstOf[site]` (dense arrays by number; a Map of 100,000 keys was a fifth of the records' time)
    let firstOf = new Int32Array(1024).fill(-1)
    const next: number[] = []
    const kindOf: number[] = []
    const made: LossSite[] = []
    // the allocation order of each record's first block: equal records are listed in it, whatever
    // order the blocks were classified in (a hash table's)
    const first: number[] = []
    // blocks in a row mostly share their record: the last one's is tried first
    let lastStack = -1
    let lastTest = 0
    let lastCode = 0
    let lastFound = 0
    const add = (stack: number, test: number, code: number, size: number, seq: number, allocator: number, blocks = 1): void => {
      const same = stack === lastStack && test === lastTest && code === lastCode
      let found = lastFound
      let at = 0
      let kind = 0
      if (!same) {
        at = site(stack)
        kind = ((testKey[test] ?? -1) + 1) * LEAK_KIND_COUNT + code
        if (at >= firstOf.length) {
          const bigger = new Int32Array(Math.max(at + 1, firstOf.length * 2)).fill(-1)
          bigger.set(firstOf)
          firstOf = bigger
        }
        found = firstOf[at]!
        while (found >= 0 && kindOf[found] !== kind) found = next[found]!
      }
      lastStack = stack
      lastTest = test
      lastCode = code
      if (found >= 0) {
        lastFound = found
        const record = made[found]!.record
        record.bytes += size
        record.blocks += blocks
        if (seq < first[found]!) first[found] = seq
        return
      }
      const resolved = frames(stack)
      const name = this.tests[test]?.name ?? null
      const allocatorName = resolved.allocator ?? (allocator === REALLOC ? 'realloc' : allocator >= OPERATOR_NEW ? NEW_OPERATORS[allocator - OPERATOR_NEW]! : null)
      next.push(firstOf[at]!)
      kindOf.push(kind)
      firstOf[at] = made.length
      lastFound = made.length
      made.push({ record: { kind: LEAK_KINDS[code]!, bytes: size, blocks, test: name, stack: resolved.stack }, allocator: allocatorName })
      first.push(seq)
    }
    if (classified instanceof Classification) {
      const { columns: c, codes } = classified
      for (let i = 0; i < c.count; i++) if (!keep || keep(c.stacks[i]!)) add(c.stacks[i]!, c.tests[i]!, codes[i]!, c.sizes[i]!, c.seqs[i]!, c.reallocs[i]!)
      const g = classified.groups
      if (g) for (let i = 0; i < g.stacks.length; i++) if (!keep || keep(g.stacks[i]!)) add(g.stacks[i]!, g.tests[i]!, g.codes[i]!, g.bytes[i]!, g.seqs[i]!, g.allocators[i]!, g.blocks[i]!)
    } else {
      for (const { block, kind } of classified) {
        if (keep && !keep(block.stack)) continue
        const allocator = block.realloc ? REALLOC : block.allocator ? OPERATOR_NEW + NEW_OPERATORS.indexOf(block.allocator as never) : 0
        add(block.stack, block.test, KIND_INDEX[kind], block.size, block.seq, allocator)
      }
    }
    // report order (sortRecords'), ties in allocation order
    const order = made.map((_, i) => i)
    order.sort((a, b) => compareRecords(made[a]!.record, made[b]!.record) || first[a]! - first[b]!)
    return order.map((i) => made[i]!)
  }

  /**
   * Stack ids to allocation sites: a stack's frames from the allocator's caller up, and its site's
   * number. One per `symbol` function, kept: the exit's records, each test case's and the peaks
   * resolve each stack once between them (`symbol` must answer the same for a pc once asked).
   */
  private siteResolver(symbol: (pc: number) => Frame): SiteResolver {
    let resolver = this.resolvers.get(symbol)
    if (!resolver) this.resolvers.set(symbol, (resolver = this.newSiteResolver(symbol)))
    return resolver
  }

  private readonly resolvers = new WeakMap<(pc: number) => Frame, SiteResolver>()

  private newSiteResolver(symbol: (pc: number) => Frame): SiteResolver {
    // by stack id in arrays: ids are small numbers, counted up from 0 by each observer
    const resolved: { stack: Frame[]; allocator: string | null }[] = []
    const frames = (id: number): { stack: Frame[]; allocator: string | null } => {
      let site = resolved[id]
      if (!site) {
        site = callerStack(this.stack(id).map(symbol))
        resolved[id] = site
      }
      return site
    }
    // Stacks that differ only inside the allocator are one allocation site: sites are keyed on the
    // frames kept, each stack mapped to its site once; a record is (site, test, kind), by number.
    // The frames' addresses lead through a tree to their site: no key text is built per stack,
    // and each address's text is hashed once.
    const siteOf: number[] = []
    const root: SiteNode = {}
    let sites = 0
    const site = (id: number): number => {
      let index = siteOf[id]
      if (index === undefined) {
        let node = root
        for (const f of frames(id).stack) {
          // most nodes have one child (100,000 sites through one main): it needs no map of its own
          let child: SiteNode | undefined
          if (node.only === undefined) node.only = { pc: f.pc, node: (child = {}) }
          else if (node.only.pc === f.pc) child = node.only.node
          else {
            node.next ??= new Map()
            child = node.next.get(f.pc)
            if (!child) node.next.set(f.pc, (child = {}))
          }
          node = child
        }
        node.site ??= sites++
        siteOf[id] = index = node.site
      }
      return index
    }
    return { frames, site }
  }

  /**
   * Stacks by allocation site (their frames from the allocator's caller up): the sites live at a
   * peak, biggest first, at most `limit` of them (ties in frame order, the same on every backend).
   */
  peakSites(amounts: StackAmount[], symbol: (pc: number) => Frame, limit = PEAK_SITES): PeakSite[] {
    const { frames, site } = this.siteResolver(symbol)
    const bySite = new Map<number, PeakSite>()
    for (const { stack, bytes, blocks } of amounts) {
      const key = site(stack)
      const found = bySite.get(key)
      if (found) {
        found.bytes += bytes
        found.blocks += blocks
      } else bySite.set(key, { bytes, blocks, stack: frames(stack).stack })
    }
    // the first `limit` in that order, chosen in one pass: a peak of 100,000 sites is not sorted whole
    const order = (a: PeakSite, b: PeakSite): number => b.bytes - a.bytes || b.blocks - a.blocks || compareWhere(a.stack, b.stack)
    const top: PeakSite[] = []
    if (limit <= 0) return top
    for (const candidate of bySite.values()) {
      if (top.length === limit && order(candidate, top[limit - 1]!) >= 0) continue
      let at = top.length === limit ? limit - 1 : top.length
      while (at > 0 && order(candidate, top[at - 1]!) < 0) {
        top[at] = top[at - 1]!
        at--
      }
      top[at] = candidate
      if (top.length > limit) top.length = limit
    }
    return top
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
  atExit: Iterable<{ block: B; kind: LeakKind }> | undefined,
  key: (block: B) => unknown = (block) => block,
): { block: B; kind: LeakKind; at: 'end' | 'exit' }[][] {
  const out: { block: B; kind: LeakKind; at: 'end' | 'exit' }[][] = Array.from({ length: count }, () => [])
  if (count === 0) return out
  // only the test cases' own blocks matter: a fixture of millions made outside them costs nothing here
  const exit: { block: B; kind: LeakKind }[] = []
  for (const entry of atExit ?? []) if (entry.block.test >= 0 && entry.block.test < count) exit.push(entry)
  const exitKind = new Map<unknown, LeakKind>()
  for (const { block, kind } of exit) exitKind.set(key(block), kind)
  const seen = new Set<unknown>()
  for (let t = 0; t < count; t++) {
    for (const { block, kind } of atEnd[t] ?? []) {
      seen.add(key(block))
      const atExitKind = exitKind.get(key(block))
      if (atExitKind !== undefined && LOST.has(atExitKind)) out[t]!.push({ block, kind: atExitKind, at: 'exit' })
      // lost at its end; or reachable then (kept, perhaps for a later test case to free: no leak)
      else out[t]!.push({ block, kind, at: 'end' })
    }
  }
  for (const { block, kind } of exit) {
    if (seen.has(key(block)) || !LOST.has(kind)) continue
    out[block.test]!.push({ block, kind, at: 'exit' })
  }
  return out
}

/** Whether a frame is `main`, as memcheck and the symbolizers name it (gdb says `main()` for C++). */
const isMain = (fn: string | null): boolean => fn === 'main' || fn === 'main()'

/**
 * A stack without the frames below `main` (libc's start-up), as memcheck shows stacks by default
 * (its --show-below-main=no). A thread's stack has no `main` and keeps its start_thread frames, as
 * memcheck's does.
 */
export function aboveMain(stack: Frame[]): Frame[] {
  const main = stack.findIndex((f) => isMain(f.fn))
  return main < 0 ? stack : stack.slice(0, main + 1)
}

/** Report order: biggest first, as memcheck lists them last-is-biggest (kinds are ASCII words: no locale needed). */
function compareRecords(a: LeakRecord, b: LeakRecord): number {
  return b.bytes - a.bytes || b.blocks - a.blocks || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)
}

/**
 * The order of two stacks by the text `fn|file|line|object` of each frame, frames joined by `,`
 * (string order, as `<` compares), read piece by piece: peak sites that tie on their amounts are
 * ordered so on every backend, and building that text for each of 100,000 sites cost more than
 * the rest of the peak.
 */
export function compareWhere(a: Frame[], b: Frame[]): number {
  let pa = 0
  let pb = 0
  let ca = 0
  let cb = 0
  for (;;) {
    let sa = wherePiece(a, pa)
    while (sa !== undefined && ca === sa.length) {
      sa = wherePiece(a, ++pa)
      ca = 0
    }
    let sb = wherePiece(b, pb)
    while (sb !== undefined && cb === sb.length) {
      sb = wherePiece(b, ++pb)
      cb = 0
    }
    if (sa === undefined || sb === undefined) return sa === sb ? 0 : sa === undefined ? -1 : 1
    if (ca === 0 && cb === 0 && pa === pb && (pa & 7) === 0) {
      // a frame whose four fields are the same as the other's reads the same: skipped whole
      const fa = a[pa >> 3]!
      const fb = b[pb >> 3]!
      if (fa === fb || (fa.fn === fb.fn && fa.file === fb.file && fa.line === fb.line && fa.object === fb.object)) {
        pa += 7
        pb += 7
        continue
      }
    }
    if (ca === 0 && cb === 0 && sa === sb) {
      pa++
      pb++
      continue
    }
    // the two pieces side by side, up to the end of one (the next piece of that stack goes on)
    for (; ca < sa.length && cb < sb.length; ca++, cb++) {
      const d = sa.charCodeAt(ca) - sb.charCodeAt(cb)
      if (d !== 0) return d < 0 ? -1 : 1
    }
  }
}

/** Piece `p` of a stack's text for compareWhere: per frame fn, |, file, |, line, |, object, and `,` before the next. */
function wherePiece(stack: Frame[], p: number): string | undefined {
  const frame = stack[p >> 3]
  if (!frame) return undefined
  switch (p & 7) {
    case 0:
      return String(frame.fn)
    case 2:
      return String(frame.file)
    case 4:
      return String(frame.line)
    case 6:
      return String(frame.object)
    case 7:
      return p >> 3 < stack.length - 1 ? ',' : ''
    default:
      return '|'
  }
}

/** A node of the site resolver's tree: the site of the frames that lead here, and the frames after them. */
interface SiteNode {
  site?: number
  /** The first child, by its frame's address; the others are in `next`. */
  only?: { pc: string | undefined; node: SiteNode }
  next?: Map<string | undefined, SiteNode>
}

/** A stack id's frames from the allocator's caller up, and its allocation site's number. */
interface SiteResolver {
  frames: (id: number) => { stack: Frame[]; allocator: string | null }
  site: (id: number) => number
}

/** Loss records in report order: biggest first, as memcheck lists them last-is-biggest. */
export function sortRecords(records: LeakRecord[]): LeakRecord[] {
  return records.sort(compareRecords)
}

const LEAK_KIND_COUNT = LEAK_KINDS.length
const KIND_INDEX = Object.fromEntries(LEAK_KINDS.map((kind, i) => [kind, i])) as Record<LeakKind, number>

/** Adds up loss records by kind. */
export function summarize(records: LeakRecord[]): LeakSummary {
  const summary = emptyLeakSummary()
  for (const record of records) {
    summary[record.kind].bytes += record.bytes
    summary[record.kind].blocks += record.blocks
  }
  return summary
}

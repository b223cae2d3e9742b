/**
 * The leak report's tree: a root over one node per source file, each holding its allocation
 * sites (file, line, function) with their stacks. It speaks istanbul-lib-report's tree protocol
 * (summary and detail nodes, `visit` with onStart/onSummary/onDetail/onSummaryEnd/onEnd), so the
 * reports walk it with istanbul's visitors — but its nodes hold leaks, not coverage.
 */
import type { Visitor } from 'istanbul-lib-report'
import { emptyLeakSummary, LEAK_KINDS, type Amount, type Frame, type LeakKind, type LeakSummary } from '../model/types.js'
import { answerRecords, worseStatus, type LeakStatus } from './answers.js'
import type { RecordedRun } from './saved-runs.js'
import { formatFrame } from './text.js'
import { isUserFrame, siteFrame } from './user-frame.js'

/** Loss records of one site listed in the report; the rest are counted ("... and 3 more stacks"). */
export const MAX_STACKS_PER_SITE = 20

/** Frames of one stack listed in the report. */
export const MAX_FRAMES_PER_STACK = 50

/** Tests, native test cases or programs listed for one site or stack. */
export const MAX_NAMES_LISTED = 50

/**
 * One allocation stack of a site and what one run leaked from it. The same leak seen by several
 * runs (one program run by two test files, say) is one stack with its `runs` counted, not a leak
 * twice the size.
 */
export interface LeakStack {
  kind: LeakKind
  /** Leaked by each of the `runs`. */
  bytes: number
  blocks: number
  /** How many runs leaked these bytes from this stack. */
  runs: number
  /** The first MAX_FRAMES_PER_STACK frames. */
  frames: Frame[]
  /** Frames left out of `frames`, when there were more. */
  moreFrames?: number
  /** How the tests stand with these blocks (answers.ts), the worst over the runs that leaked them. */
  status: LeakStatus
  /** The framework tests the blocks are listed under (at most MAX_NAMES_LISTED): those that failed on them, else allowed them, else made their runs. */
  tests: string[]
  /** The native test cases that allocated them (heapspec.h markers, the `tests` option). */
  testCases: string[]
  /** The programs that leaked them, as run. */
  programs: string[]
  /** Set when some tests, test cases or programs were left out of the lists. */
  moreNames?: true
}

/** Where leaked blocks were allocated: the first frame in the user's code. */
export interface AllocationSite {
  fn: string | null
  line: number | null
  leaked: LeakSummary
  tests: string[]
  testCases: string[]
  /** Set when some tests or test cases were left out of the lists. */
  moreNames?: true
  /** Worst first, at most MAX_STACKS_PER_SITE. */
  stacks: LeakStack[]
  /** Stacks left out of `stacks` (their leaks are in `leaked`), and what they leaked. */
  moreStacks?: { stacks: number; bytes: number; blocks: number }
}

/** A set that keeps its first `max` members and notes whether more were offered. */
class BoundedSet {
  readonly items = new Set<string>()
  more = false

  constructor(private readonly max = MAX_NAMES_LISTED) {}

  add(item: string): void {
    if (this.items.has(item)) return
    if (this.items.size < this.max) this.items.add(item)
    else this.more = true
  }

  /** Stops looking once full and one more was offered: a run claimed by thousands of tests costs MAX_NAMES_LISTED steps per record. */
  addAll(items: Iterable<string>): void {
    for (const item of items) {
      if (this.more) return
      this.add(item)
    }
  }

  sorted(): string[] {
    return sorted([...this.items])
  }
}

/** Bytes and blocks of the given kinds, added up. */
export function amountOf(summary: LeakSummary, kinds: readonly LeakKind[]): Amount {
  return kinds.reduce((sum, k) => ({ bytes: sum.bytes + summary[k].bytes, blocks: sum.blocks + summary[k].blocks }), { bytes: 0, blocks: 0 })
}

/** Worst first: failing bytes, failing blocks, then all bytes; ties by name. */
function worstFirst<T>(leaked: (item: T) => LeakSummary, name: (item: T) => string, kinds: readonly LeakKind[]): (a: T, b: T) => number {
  return (a, b) => {
    const [fa, fb] = [amountOf(leaked(a), kinds), amountOf(leaked(b), kinds)]
    const [ta, tb] = [amountOf(leaked(a), LEAK_KINDS), amountOf(leaked(b), LEAK_KINDS)]
    const [na, nb] = [name(a), name(b)]
    return fb.bytes - fa.bytes || fb.blocks - fa.blocks || tb.bytes - ta.bytes || (na < nb ? -1 : na > nb ? 1 : 0)
  }
}

/** A node of the tree: istanbul's node protocol. */
export abstract class LeakNode {
  parent: LeakNode | null = null
  abstract isSummary(): boolean
  abstract getChildren(): LeakNode[]
  /** Leaked amounts under this node, by kind. */
  abstract readonly leaked: LeakSummary

  isRoot(): boolean {
    return this.parent === null
  }

  getParent(): LeakNode | null {
    return this.parent
  }

  /** Depth first, as istanbul's BaseNode visits. */
  visit(visitor: Visitor<LeakNode>, state: unknown): void {
    if (this.isSummary()) visitor.onSummary(this, state)
    else visitor.onDetail(this, state)
    for (const child of this.getChildren()) child.visit(visitor, state)
    if (this.isSummary()) visitor.onSummaryEnd(this, state)
  }
}

/** A source file (or, for leaks with no source line, the object or stack they came from). */
export class SourceFileNode extends LeakNode {
  constructor(
    /** As the debug info names it, relative to the project root when inside it. */
    readonly file: string,
    /** Whether the file is the user's code (not libc's, not a system header). */
    readonly userCode: boolean,
    readonly leaked: LeakSummary,
    /** Worst first. */
    readonly sites: AllocationSite[],
  ) {
    super()
  }

  isSummary(): boolean {
    return false
  }

  getChildren(): LeakNode[] {
    return []
  }
}

/** The whole report: the files, worst first, and the run's totals. */
export class LeakRootNode extends LeakNode {
  constructor(
    readonly files: SourceFileNode[],
    readonly leaked: LeakSummary,
    /** How many runs the report covers. */
    readonly runs: number,
    /** The kinds that fail (they order the report and colour it). */
    readonly kinds: readonly LeakKind[],
  ) {
    super()
    for (const f of files) f.parent = this
  }

  isSummary(): boolean {
    return true
  }

  getChildren(): LeakNode[] {
    return this.files
  }
}

/** The tree, visited as istanbul visits its trees. */
export class LeakTree {
  constructor(readonly root: LeakRootNode) {}

  getRoot(): LeakRootNode {
    return this.root
  }

  visit(visitor: Visitor<LeakNode>, state: unknown): void {
    visitor.onStart(this.root, state)
    this.root.visit(visitor, state)
    visitor.onEnd(this.root, state)
  }
}

function add(summary: LeakSummary, kind: LeakKind, bytes: number, blocks: number): void {
  summary[kind].bytes += bytes
  summary[kind].blocks += blocks
}

function sorted(items: string[]): string[] {
  return [...items].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

/** The file a stack's leaks are filed under, and the frame that names their site. */
function fileOf(stack: Frame[]): { file: string; userCode: boolean; frame: Frame | undefined } {
  const frame = siteFrame(stack)
  if (!frame) return { file: '(no stack recorded)', userCode: false, frame }
  if (frame.file) return { file: frame.file, userCode: isUserFrame(frame), frame }
  return { file: frame.object ?? '(unknown object)', userCode: false, frame }
}

interface StackEntry {
  key: string
  kind: LeakKind
  status: LeakStatus
  /** What each run leaked from it (a run's loss records are one per kind and stack). */
  bytes: number
  blocks: number
  runs: Set<number>
  frames: Frame[]
  tests: BoundedSet
  testCases: BoundedSet
  programs: BoundedSet
}

interface SiteEntry {
  fn: string | null
  line: number | null
  leaked: LeakSummary
  tests: BoundedSet
  testCases: BoundedSet
  stacks: Map<string, StackEntry>
}

/**
 * The tree of every loss record of the runs, by source file and allocation site. A run checked
 * by several tests counts once; the same site leaking in several runs adds up. What a site lists
 * is bounded (MAX_STACKS_PER_SITE, MAX_FRAMES_PER_STACK, MAX_NAMES_LISTED), its amounts are not.
 */
export function buildLeakTree(runs: RecordedRun[], kinds: readonly LeakKind[]): LeakTree {
  const files = new Map<string, { userCode: boolean; leaked: LeakSummary; sites: Map<string, SiteEntry> }>()
  const total = emptyLeakSummary()
  runs.forEach((recorded, runIndex) => {
    const { run } = recorded
    const program = run.program.command.join(' ')
    // the tests that answer for each record; for a run made outside a test framework (`heapspec
    // run`), its program and native test case, as the per-test summary names them
    for (const { record, status, tests: answerable } of answerRecords(recorded)) {
      const { file, userCode, frame } = fileOf(record.stack)
      const entry = files.get(file) ?? { userCode, leaked: emptyLeakSummary(), sites: new Map<string, SiteEntry>() }
      files.set(file, entry)
      const siteKey = JSON.stringify([frame?.line ?? null, frame?.fn ?? null])
      let site = entry.sites.get(siteKey)
      if (!site) {
        site = { fn: frame?.fn ?? null, line: frame?.file ? frame.line : null, leaked: emptyLeakSummary(), tests: new BoundedSet(), testCases: new BoundedSet(), stacks: new Map() }
        entry.sites.set(siteKey, site)
      }
      const frames = record.stack.map(({ fn, file: f, line, object }) => ({ fn, file: f, line, object }))
      // one leak seen by several runs is that leak in so many runs, not a leak of the sum
      const stackKey = JSON.stringify([record.kind, record.bytes, record.blocks, frames.map(formatFrame)])
      let stack = site.stacks.get(stackKey)
      if (!stack) {
        stack = { key: stackKey, kind: record.kind, bytes: record.bytes, blocks: record.blocks, runs: new Set(), frames, status, tests: new BoundedSet(), testCases: new BoundedSet(), programs: new BoundedSet() }
        site.stacks.set(stackKey, stack)
      }
      stack.status = worseStatus(stack.status, status)
      stack.runs.add(runIndex)
      stack.tests.addAll(answerable)
      site.tests.addAll(answerable)
      stack.programs.add(program)
      if (record.test !== null) {
        stack.testCases.add(record.test)
        site.testCases.add(record.test)
      }
      for (const summary of [site.leaked, entry.leaked, total]) add(summary, record.kind, record.bytes, record.blocks)
    }
  })
  const stackOrder = (a: StackEntry, b: StackEntry): number => {
    const failing = Number(kinds.includes(b.kind)) - Number(kinds.includes(a.kind))
    return failing || b.bytes * b.runs.size - a.bytes * a.runs.size || b.blocks * b.runs.size - a.blocks * a.runs.size || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  }
  const nodes = [...files].map(([file, entry]) => {
    const sites = [...entry.sites.values()].map((s): AllocationSite => {
      const all = [...s.stacks.values()].sort(stackOrder)
      const shown = all.slice(0, MAX_STACKS_PER_SITE)
      const left = all.slice(MAX_STACKS_PER_SITE)
      const stacks = shown.map((st): LeakStack => {
        const listed: LeakStack = { kind: st.kind, bytes: st.bytes, blocks: st.blocks, runs: st.runs.size, frames: st.frames.slice(0, MAX_FRAMES_PER_STACK), status: st.status, tests: st.tests.sorted(), testCases: st.testCases.sorted(), programs: st.programs.sorted() }
        if (st.frames.length > MAX_FRAMES_PER_STACK) listed.moreFrames = st.frames.length - MAX_FRAMES_PER_STACK
        if (st.tests.more || st.testCases.more || st.programs.more) listed.moreNames = true
        return listed
      })
      const site: AllocationSite = { fn: s.fn, line: s.line, leaked: s.leaked, tests: s.tests.sorted(), testCases: s.testCases.sorted(), stacks }
      if (s.tests.more || s.testCases.more) site.moreNames = true
      if (left.length > 0) site.moreStacks = { stacks: left.length, bytes: left.reduce((n, st) => n + st.bytes * st.runs.size, 0), blocks: left.reduce((n, st) => n + st.blocks * st.runs.size, 0) }
      return site
    })
    sites.sort(worstFirst((s) => s.leaked, (s) => `${String(s.line ?? '').padStart(9, '0')} ${s.fn ?? ''}`, kinds))
    return new SourceFileNode(file, entry.userCode, entry.leaked, sites)
  })
  nodes.sort(worstFirst((n) => n.leaked, (n) => n.file, kinds))
  return new LeakTree(new LeakRootNode(nodes, total, runs.length, kinds))
}

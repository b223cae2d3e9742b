/**
 * The leak report's tree: a root over one node per source file, each holding its allocation
 * sites (file, line, function) with their stacks. It speaks istanbul-lib-report's tree protocol
 * (summary and detail nodes, `visit` with onStart/onSummary/onDetail/onSummaryEnd/onEnd), so the
 * reports walk it with istanbul's visitors — but its nodes hold leaks, not coverage.
 */
import type { Visitor } from 'istanbul-lib-report'
import { emptyLeakSummary, LEAK_KINDS, type Amount, type Frame, type LeakKind, type LeakSummary } from '../model/types.js'
import { testLabel, type RecordedRun } from './saved-runs.js'
import { formatFrame } from './text.js'
import { isUserFrame, siteFrame } from './user-frame.js'

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
  frames: Frame[]
  /**
   * The tests answerable for these blocks: the framework tests, or for a run made outside a test
   * framework (`heapspec run`), its program and native test case, as the per-test summary names them.
   */
  tests: string[]
  /** The native test cases that allocated them (heapspec.h markers, the `tests` option). */
  testCases: string[]
  /** The programs that leaked them, as run. */
  programs: string[]
}

/** Where leaked blocks were allocated: the first frame in the user's code. */
export interface AllocationSite {
  fn: string | null
  line: number | null
  leaked: LeakSummary
  tests: string[]
  testCases: string[]
  /** Worst first. */
  stacks: LeakStack[]
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

function union(into: string[], more: Iterable<string>): void {
  for (const item of more) if (!into.includes(item)) into.push(item)
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

/**
 * The tree of every loss record of the runs, by source file and allocation site. A run checked
 * by several tests counts once; the same site leaking in several runs adds up.
 */
export function buildLeakTree(runs: RecordedRun[], kinds: readonly LeakKind[]): LeakTree {
  const files = new Map<string, { userCode: boolean; leaked: LeakSummary; sites: Map<string, AllocationSite> }>()
  const total = emptyLeakSummary()
  // The runs each stack has been counted for: a run's loss records are one per kind and stack.
  const countedRuns = new Map<LeakStack, Set<number>>()
  runs.forEach(({ run, tests }, runIndex) => {
    const program = run.program.command.join(' ')
    run.leaks.forEach((record, index) => {
      const answerable =
        tests.length === 0 ? [record.test === null ? program : `${program} > ${record.test}`] : tests.filter((t) => t.leaks === null || t.leaks.includes(index)).map(testLabel)
      const { file, userCode, frame } = fileOf(record.stack)
      const entry = files.get(file) ?? { userCode, leaked: emptyLeakSummary(), sites: new Map<string, AllocationSite>() }
      files.set(file, entry)
      const siteKey = JSON.stringify([frame?.line ?? null, frame?.fn ?? null])
      const site = entry.sites.get(siteKey) ?? { fn: frame?.fn ?? null, line: frame?.file ? frame.line : null, leaked: emptyLeakSummary(), tests: [], testCases: [], stacks: [] }
      entry.sites.set(siteKey, site)
      const frames = record.stack.map(({ fn, file: f, line, object }) => ({ fn, file: f, line, object }))
      const stackKey = JSON.stringify([record.kind, record.bytes, record.blocks, frames.map(formatFrame)])
      let stack = site.stacks.find((s) => JSON.stringify([s.kind, s.bytes, s.blocks, s.frames.map(formatFrame)]) === stackKey)
      if (!stack) {
        stack = { kind: record.kind, bytes: record.bytes, blocks: record.blocks, runs: 0, frames, tests: [], testCases: [], programs: [] }
        site.stacks.push(stack)
      }
      const counted = countedRuns.get(stack) ?? new Set<number>()
      countedRuns.set(stack, counted)
      if (!counted.has(runIndex)) stack.runs++
      counted.add(runIndex)
      union(stack.tests, answerable)
      if (record.test !== null) union(stack.testCases, [record.test])
      union(stack.programs, [program])
      union(site.tests, answerable)
      if (record.test !== null) union(site.testCases, [record.test])
      for (const summary of [site.leaked, entry.leaked, total]) add(summary, record.kind, record.bytes, record.blocks)
    })
  })
  const stackOrder = (a: LeakStack, b: LeakStack): number => {
    const failing = Number(kinds.includes(b.kind)) - Number(kinds.includes(a.kind))
    const [ka, kb] = [JSON.stringify([a.kind, a.bytes, a.frames.map(formatFrame)]), JSON.stringify([b.kind, b.bytes, b.frames.map(formatFrame)])]
    return failing || b.bytes * b.runs - a.bytes * a.runs || b.blocks * b.runs - a.blocks * a.runs || (ka < kb ? -1 : ka > kb ? 1 : 0)
  }
  const nodes = [...files].map(([file, entry]) => {
    const sites = [...entry.sites.values()].map((s) => ({ ...s, tests: sorted(s.tests), testCases: sorted(s.testCases), stacks: s.stacks.map((st) => ({ ...st, tests: sorted(st.tests), testCases: sorted(st.testCases), programs: sorted(st.programs) })).sort(stackOrder) }))
    sites.sort(worstFirst((s) => s.leaked, (s) => `${String(s.line ?? '').padStart(9, '0')} ${s.fn ?? ''}`, kinds))
    return new SourceFileNode(file, entry.userCode, entry.leaked, sites)
  })
  nodes.sort(worstFirst((n) => n.leaked, (n) => n.file, kinds))
  return new LeakTree(new LeakRootNode(nodes, total, runs.length, kinds))
}

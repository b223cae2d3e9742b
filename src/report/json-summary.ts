/** The JSON leak summary (`leak-summary.json`): the HTML report's content, for tools. */
import type { Context } from 'istanbul-lib-report'
import type { Frame, LeakKind, LeakSummary } from '../model/types.js'
import type { LeakStatus } from './answers.js'
import type { LeakRootNode, SourceFileNode } from './leak-tree.js'
import { LeakReportBase } from './report-base.js'
import type { TestLeaks } from './test-summary.js'
import { errorStory, type MemoryErrorRow } from './memory-errors.js'
import { jsonText } from './json-text.js'

/** The summary's file name. */
export const JSON_SUMMARY_FILE = 'leak-summary.json'

/** `leak-summary.json`, version 1. */
export interface LeakSummaryJson {
  heapspecLeakSummary: 1
  /** The kinds that fail. */
  kinds: LeakKind[]
  runs: number
  leaked: LeakSummary
  /** Worst first. */
  files: {
    file: string
    userCode: boolean
    leaked: LeakSummary
    /** Worst first. */
    sites: {
      fn: string | null
      line: number | null
      leaked: LeakSummary
      tests: string[]
      testCases: string[]
      moreNames?: true
      /** At most 20 (see leak-tree.ts), worst first; the others counted in moreStacks. */
      stacks: { kind: LeakKind; bytes: number; blocks: number; runs: number; frames: Frame[]; moreFrames?: number; status: LeakStatus; tests: string[]; testCases: string[]; programs: string[]; moreNames?: true }[]
      moreStacks?: { stacks: number; bytes: number; blocks: number }
    }[]
  }[]
  /** The tests' leaks (answers.ts): failed first, then unchecked, then tolerated, each worst first. */
  tests: TestLeaks[]
  /** The memory errors (memory-errors.ts), each test case's in the order they ran, then those outside any. */
  memoryErrors: { testCase: string; files: string[]; kind: string; what: string | null; count: number | null; site: Frame | null; story: string[]; stack: Frame[] }[]
}

/** The JSON summary, as an istanbul report visitor over the leak tree. */
export class JsonSummaryReport extends LeakReportBase {
  private summary: LeakSummaryJson | undefined

  constructor(
    private readonly tests: TestLeaks[],
    private readonly errors: MemoryErrorRow[] = [],
  ) {
    super()
  }

  override onStart(root: LeakRootNode): void {
    const memoryErrors = this.errors.map(({ testCase, files, error, site }) => ({
      testCase,
      files,
      kind: error.kind,
      what: error.what ?? null,
      count: error.count ?? null,
      site,
      story: errorStory(error),
      stack: error.stack,
    }))
    this.summary = { heapspecLeakSummary: 1, kinds: [...root.kinds], runs: root.runs, leaked: root.leaked, files: [], tests: this.tests, memoryErrors }
  }

  override onDetail(file: SourceFileNode): void {
    this.summary!.files.push({ file: file.file, userCode: file.userCode, leaked: file.leaked, sites: file.sites })
  }

  override onEnd(_root: LeakRootNode, context: Context): void {
    const out = context.writer.writeFile(JSON_SUMMARY_FILE)
    out.println(jsonText(this.summary))
    out.close()
  }
}

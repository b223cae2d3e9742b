/**
 * Writes a leak report directory: the HTML report, the JSON summary, and (for the reporters and
 * `heapspec report`) the saved runs a later merge reads. Used by the CLI and the reporters alike.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createContext, type ContextOptions, type Watermarks } from 'istanbul-lib-report'
import { HeapspecError } from '../errors.js'
import type { LeakKind } from '../model/types.js'
import { memoryErrorsLink, MEMORY_ERRORS_PAGE, writeMemoryErrorsPage } from './html-errors.js'
import { HtmlReport, LEAKED_BYTES_WATERMARK } from './html-report.js'
import { memoryErrorRows } from './memory-errors.js'
import { JSON_SUMMARY_FILE, JsonSummaryReport } from './json-summary.js'
import { buildLeakTree } from './leak-tree.js'
import { readProjectSource } from './project-source.js'
import { SAVED_RUNS_FILE, serializeSavedRuns, type RecordedRun } from './saved-runs.js'
import { summarizeTests } from './test-summary.js'

/** Leaked bytes (of the failing kinds) at which a file or site turns from fine to notable, and to bad. */
export const DEFAULT_WATERMARKS: [number, number] = [1, 1024]

/** The text report's file name in a report directory. */
export const TEXT_REPORT_FILE = 'leak-report.txt'

/** What to write, and how. */
export interface LeakReportOptions {
  /** The project root: relative source paths are read from it (for the source lines shown). */
  root: string
  /** The kinds that fail: they order and colour the report. */
  kinds: readonly LeakKind[]
  /** Leaked-bytes watermarks: below the first is fine, from the second on bad. @default [1, 1024] */
  watermarks?: [number, number]
  /** Save the runs as heapspec-runs.json, so `heapspec report` can merge this report with others. @default false */
  saveRuns?: boolean
  /** A text report to save as leak-report.txt. */
  text?: string
}

// istanbul's context builds its coverage summarizers from a coverage map up front; the leak report
// uses none of them (it walks its own tree), so the context gets a map with no files.
const NO_COVERAGE = { files: () => [] } as unknown as ContextOptions['coverageMap']

/**
 * Writes the report into `dir` (created if missing): index.html and files/*.html, memory-errors.html
 * when the runs made memory errors, leak-summary.json,
 * and as asked heapspec-runs.json and leak-report.txt. Returns the path of index.html. Throws a
 * HeapspecError naming the directory when anything cannot be written.
 */
export function writeLeakReport(dir: string, runs: RecordedRun[], options: LeakReportOptions): string {
  const tree = buildLeakTree(runs, options.kinds)
  const tests = summarizeTests(runs, options.kinds)
  const errors = memoryErrorRows(runs)
  try {
    mkdirSync(dir, { recursive: true })
    // Pages of files that no longer leak must not linger from an earlier report in the same place.
    if (existsSync(join(dir, JSON_SUMMARY_FILE))) rmSync(join(dir, 'files'), { recursive: true, force: true })
    const context = createContext({
      dir,
      coverageMap: NO_COVERAGE,
      watermarks: { [LEAKED_BYTES_WATERMARK]: options.watermarks ?? DEFAULT_WATERMARKS } as unknown as Partial<Watermarks>,
      // only the project's own source files are quoted: a saved run's frames may name any path
      sourceFinder: (file) => {
        const text = readProjectSource(options.root, file)
        if (text === undefined) throw new Error(`${file} is not a source file of the project`)
        return text
      },
    })
    new HtmlReport({ tests, runs, notices: memoryErrorsLink(errors) }).execute(context, tree)
    new JsonSummaryReport(tests, errors).execute(context, tree)
    if (errors.length > 0) writeMemoryErrorsPage(dir, errors, options.root)
    else rmSync(join(dir, MEMORY_ERRORS_PAGE), { force: true })
    if (options.saveRuns) writeFileSync(join(dir, SAVED_RUNS_FILE), serializeSavedRuns(runs))
    if (options.text !== undefined) writeFileSync(join(dir, TEXT_REPORT_FILE), options.text)
  } catch (error) {
    throw new HeapspecError(`heapspec: cannot write the leak report to ${dir}: ${(error as Error).message}. Check that the directory can be created and written (the reporter's outputDir option, heapspec's --out).`, { cause: error })
  }
  return join(dir, 'index.html')
}

import { relative, resolve } from 'node:path'
import { githubAnnotations } from '../src/report/annotations.js'
import type { RecordedRun } from '../src/report/saved-runs.js'
import { formatErrorSummary, memoryErrorRows } from '../src/report/memory-errors.js'
import { formatSummaryReport, formatTestSummary, summarizeTests } from '../src/report/test-summary.js'
import { writeLeakReport } from '../src/report/write-report.js'
import type { NormalizedReporterOptions } from './options.js'

/** Where a reporter's end-of-run output goes: the framework's own log. */
export interface ReporterOutput {
  log(text: string): void
  color: boolean
}

/**
 * What both reporters do when the tests are done: write the report directory (HTML, JSON,
 * saved runs), print the per-test summary and the memory errors (nothing when nothing leaked and
 * no memory error was made) and, on GitHub Actions,
 * an annotation per leak. Returns the error that kept the report from being written, for the
 * reporter to print and fail the run with as its framework does; never swallows it.
 */
export function endOfRun(runs: RecordedRun[], root: string, options: NormalizedReporterOptions, output: ReporterOutput): Error | undefined {
  const rows = summarizeTests(runs, options.kinds)
  const dir = resolve(root, options.outputDir)
  let index: string | undefined
  let failure: Error | undefined
  try {
    index = writeLeakReport(dir, runs, { root, kinds: options.kinds, watermarks: options.watermarks, saveRuns: true, text: formatSummaryReport(runs, { kinds: options.kinds }) })
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error))
  }
  // the leaks, then the memory errors, beside them
  const summary = [formatTestSummary(rows, { kinds: options.kinds, color: output.color }), formatErrorSummary(memoryErrorRows(runs), { color: output.color })].filter(Boolean).join('\n')
  if (summary) output.log(`\n${summary}${index ? `\nheapspec: leak report in ${relative(process.cwd(), index) || index}\n` : ''}`)
  if (options.annotations) for (const line of githubAnnotations(runs, { root, workspace: process.env.GITHUB_WORKSPACE, kinds: options.kinds })) output.log(line)
  return failure
}

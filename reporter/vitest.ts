/**
 * heapspec's Vitest reporter: `reporters: ['default', 'heapspec/reporter/vitest']`. At the end of
 * the run it prints the per-test leak summary, writes the HTML and JSON leak report and the saved
 * runs to heapspec-report/, and on GitHub Actions annotates each leak at its source line. The runs
 * come from each test's task.meta, where heapspec/vitest (in setupFiles) files them.
 */
import { rmSync } from 'node:fs'
import type { Reporter, TestModule, Vitest } from 'vitest/node'
import { createResultsDir, RESULTS_DIR_ENV } from '../src/report/results-dir.js'
import { groupRunRefs, type RunRef } from '../src/report/saved-runs.js'
import { useColor } from '../src/report/terminal.js'
import { endOfRun } from './end-of-run.js'
import { normalizeReporterOptions, type HeapspecReporterOptions, type NormalizedReporterOptions } from './options.js'
import { CaptureProgress } from './progress.js'

export type { HeapspecReporterOptions } from './options.js'

/** The claims in a task's meta, as heapspec/vitest files them; anything else is ignored. */
function refsOf(meta: unknown, file: string, name: string | null): RunRef[] {
  const runs = (meta as { heapspec?: { runs?: unknown } } | undefined)?.heapspec?.runs
  if (!Array.isArray(runs)) return []
  return runs
    .filter((r): r is RunRef => typeof r === 'object' && r !== null && typeof r.id === 'string' && (r.leaks === null || Array.isArray(r.leaks)))
    .map((r) => ({ ...r, file, name }))
}

/** heapspec's Vitest reporter. */
export default class HeapspecVitestReporter implements Reporter {
  private readonly options: NormalizedReporterOptions
  private vitest: Vitest | undefined
  private progress: CaptureProgress | undefined

  /** @example reporters: ['default', ['heapspec/reporter/vitest', { outputDir: 'reports/heap' }]] */
  constructor(options: HeapspecReporterOptions = {}) {
    this.options = normalizeReporterOptions(options)
  }

  onInit(vitest: Vitest): void {
    this.vitest = vitest
    if (this.options.progress) {
      // Set before Vitest starts its workers, which inherit it and file their captures there.
      const dir = createResultsDir()
      process.env[RESULTS_DIR_ENV] = dir
      this.progress = new CaptureProgress(dir, vitest.config.root, (line) => vitest.logger.log(line))
      vitest.onClose(() => rmSync(dir, { recursive: true, force: true }))
    }
  }

  onTestRunStart(): void {
    this.progress?.start()
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    this.progress?.stop()
    const vitest = this.vitest!
    const refs: RunRef[] = []
    for (const module of testModules) {
      // The file's meta holds the runs made outside any test that no test claimed.
      refs.push(...refsOf(module.meta(), module.moduleId, null))
      for (const test of module.children.allTests()) refs.push(...refsOf(test.meta(), module.moduleId, test.fullName))
    }
    const root = vitest.config.root
    const failure = endOfRun(groupRunRefs(refs, root), root, this.options, {
      log: (text) => vitest.logger.log(text),
      color: useColor(process.stdout),
    })
    if (failure) {
      // Vitest prints an error a reporter throws and fails the run with it.
      process.exitCode = 1
      throw failure
    }
  }
}

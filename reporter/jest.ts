/**
 * heapspec's Jest reporter: `reporters: ['default', 'heapspec/reporter/jest']`. At the end of the
 * run it prints the per-test leak summary, writes the HTML and JSON leak report and the saved runs
 * to heapspec-report/, and on GitHub Actions annotates each leak at its source line. The runs come
 * from a results directory it names in HEAPSPEC_RESULTS_DIR, where heapspec/jest (in
 * setupFilesAfterEnv) files them from every worker.
 */
import { rmSync } from 'node:fs'
import { BaseReporter, type AggregatedResult, type Config } from '@jest/reporters'
import { createResultsDir, readRunRefs, RESULTS_DIR_ENV } from '../src/report/results-dir.js'
import { groupRunRefs, type RunRef } from '../src/report/saved-runs.js'
import { useColor } from '../src/report/terminal.js'
import { endOfRun } from './end-of-run.js'
import { normalizeReporterOptions, type HeapspecReporterOptions, type NormalizedReporterOptions } from './options.js'
import { CaptureProgress } from './progress.js'

export type { HeapspecReporterOptions } from './options.js'

/** heapspec's Jest reporter. */
export default class HeapspecJestReporter extends BaseReporter {
  private readonly options: NormalizedReporterOptions
  private readonly root: string
  private dir: string | undefined
  private progress: CaptureProgress | undefined

  /** @example reporters: ['default', ['heapspec/reporter/jest', { outputDir: 'reports/heap' }]] */
  constructor(globalConfig: Config.GlobalConfig, options?: HeapspecReporterOptions) {
    super()
    this.root = globalConfig.rootDir
    this.options = normalizeReporterOptions(options, process.env, Boolean(process.stderr.isTTY))
  }

  override onRunStart(): void {
    // Named before Jest starts its workers, which inherit it.
    this.dir = createResultsDir()
    process.env[RESULTS_DIR_ENV] = this.dir
    if (this.options.progress) {
      this.progress = new CaptureProgress(this.dir, this.root, (line) => this.log(line))
      this.progress.start()
    }
  }

  override onRunComplete(_contexts?: unknown, results?: AggregatedResult): void {
    this.progress?.stop()
    const dir = this.dir
    if (!dir) return
    let failure: Error | undefined
    try {
      // Jest's state names a test `suite test` (spaces); its results know the levels.
      const names = new Map<string, string>()
      for (const file of results?.testResults ?? []) {
        for (const t of file.testResults) names.set(`${file.testFilePath}\0${t.fullName}`, [...t.ancestorTitles, t.title].join(' > '))
      }
      const refs: RunRef[] = readRunRefs(dir).map((r) => ({ ...r, name: r.name && r.file ? (names.get(`${r.file}\0${r.name}`) ?? r.name) : (r.name ?? null) }))
      failure = endOfRun(groupRunRefs(refs, this.root), this.root, this.options, {
        log: (text) => this.log(text),
        color: useColor(process.stderr),
      })
    } catch (error) {
      failure = error instanceof Error ? error : new Error(`heapspec: ${String(error)}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
      if (process.env[RESULTS_DIR_ENV] === dir) delete process.env[RESULTS_DIR_ENV]
      this.dir = undefined
    }
    if (failure) {
      // Jest fails the run on a reporter's last error, but does not print it.
      this.log(`\n${failure.message.startsWith('heapspec:') ? failure.message : `heapspec: ${failure.message}`}\n`)
      this._setError(failure)
    }
  }
}

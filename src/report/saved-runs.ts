/**
 * Runs as the reports see them — each with the framework tests that made or checked it — and
 * their saved form, `heapspec-runs.json`, which `heapspec report` merges across shards and machines.
 */
import { existsSync, readdirSync, realpathSync, statSync, type Dirent } from 'node:fs'
import { isAbsolute, join, relative, sep } from 'node:path'
import { BadOptionError } from '../errors.js'
import type { Frame, MemoryError, PeakSite, RunJson } from '../model/types.js'
import { formatMiB, readRegularFile, UnreadableFile } from './bounded-read.js'
import { jsonText } from './json-text.js'
import { printable } from './printable.js'
import { validateSavedRuns } from './validate-saved-runs.js'
import type { CheckVerdict } from '../run-events.js'

/** A framework test that made or checked a run. */
export interface TestRef {
  /** The test file, relative to the project root, `/`-separated; `null` outside a test framework. */
  file: string | null
  /** The test's full name (`suite > test`); `null` for a run made outside any test (a `beforeAll` hook, collection). */
  name: string | null
  /** The loss records the claim covers (indices into `reportRecords(run)`), or `null` for all of them. */
  leaks: number[] | null
  /**
   * What the test's matcher made of them: `failed`, `passed` (allowed), `seen` (a matcher that
   * judges no leaks); absent when the test made the run (see answers.ts for what follows).
   */
  verdict?: CheckVerdict
}

/** A run and the tests that made or checked it: what every report is built from. */
export interface RecordedRun {
  tests: TestRef[]
  run: RunJson
}

/** The file name of saved runs, in a report directory. */
export const SAVED_RUNS_FILE = 'heapspec-runs.json'

/** What `heapspec run --out` saves: one run. */
export const SAVED_RUN_FILE = 'heapspec.json'

/** `heapspec-runs.json`: the runs of one test run (or of a merge), paths relative to the project root. */
export interface SavedRuns {
  heapspecRuns: 1
  runs: RecordedRun[]
}

/**
 * A test's claim on a run, as a recorder files it (in Vitest's task meta, in Jest's results
 * directory). The run rides along with the first claim a process files, the others name it by id.
 */
export interface RunRef {
  /** The run's id (unique across processes and machines). */
  id: string
  /** The test file, absolute or relative to the project root; the Vitest reporter knows it from the task. */
  file?: string | null
  /** The test's full name; `null` outside any test. */
  name?: string | null
  leaks: number[] | null
  verdict?: CheckVerdict
  run?: RunJson
}

/** A path as the report shows it: relative to the project root when inside it, `/`-separated. */
export function projectPath(path: string, root: string): string {
  if (!isAbsolute(path)) return path
  const rel = relative(root, path)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return path
  return rel.split(sep).join('/')
}

/**
 * The run as reports keep it: paths inside the project made relative to its root, and raw program
 * counters dropped (they change with every run), so the same tests give the same saved runs on
 * any machine, sharded or not.
 */
export function normalizeRun(run: RunJson, root: string): RunJson {
  const frame = ({ fn, file, line, object }: Frame): Frame => ({ fn, file: file === null ? null : projectPath(file, root), line, object: object === null ? null : projectPath(object, root) })
  return {
    ...run,
    program: { ...run.program, command: run.program.command.map((word) => projectPath(word, root)) },
    leaks: run.leaks.map((record) => ({ ...record, stack: record.stack.map(frame) })),
    tests: run.tests.map((test) => ({
      ...test,
      ...(test.leaks ? { leaks: test.leaks.map((record) => ({ ...record, stack: record.stack.map(frame) })) } : {}),
      ...(test.errors ? { errors: test.errors.map(memoryError) } : {}),
      ...(test.peak ? { peak: { ...test.peak, sites: test.peak.sites.map(site) } } : {}),
    })),
    errors: run.errors.map(memoryError),
    ...(run.peak ? { peak: { ...run.peak, sites: run.peak.sites.map(site) } } : {}),
  }
  function site(s: PeakSite): PeakSite {
    return { ...s, stack: s.stack.map(frame) }
  }
  function memoryError(error: MemoryError): MemoryError {
    return { ...error, stack: error.stack.map(frame), ...(error.auxStacks ? { auxStacks: error.auxStacks.map((aux) => ({ ...aux, stack: aux.stack.map(frame) })) } : {}) }
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** A test's name for the reports: `test/list.test.ts > suite > test`. */
export function testLabel(test: Pick<TestRef, 'file' | 'name'>): string {
  if (test.file === null) return test.name ?? '(no test)'
  return test.name === null ? `${test.file} (outside any test)` : `${test.file} > ${test.name}`
}

/**
 * The tests of a run, one entry per test and verdict: claims of the same test with the same
 * verdict merged (all records wins over some). A claim from outside any test (a run made in
 * `beforeAll`) is kept: it says where the leaks no test checked come from.
 */
function mergeTests(tests: TestRef[]): TestRef[] {
  const byTest = new Map<string, TestRef>()
  for (const t of tests) {
    const key = JSON.stringify([t.file, t.name, t.verdict ?? null])
    const seen = byTest.get(key)
    if (!seen) byTest.set(key, { file: t.file, name: t.name, leaks: t.leaks === null ? null : [...new Set(t.leaks)].sort((a, b) => a - b), ...(t.verdict ? { verdict: t.verdict } : {}) })
    else if (seen.leaks !== null) seen.leaks = t.leaks === null ? null : [...new Set([...seen.leaks, ...t.leaks])].sort((a, b) => a - b)
  }
  return [...byTest.values()].sort((a, b) => compareText(testLabel(a), testLabel(b)) || compareText(a.verdict ?? '', b.verdict ?? ''))
}

/**
 * Runs in one fixed order, whatever order the tests ran in or the shards were merged in: by their
 * tests, then by content. Equal inputs give equal reports.
 */
export function canonicalRuns(runs: RecordedRun[]): RecordedRun[] {
  // one run needs no key: a big one would cost its whole text again
  if (runs.length <= 1) return runs.map((r) => ({ tests: mergeTests(r.tests), run: r.run }))
  const keyed = runs.map((r) => {
    const tidy = { tests: mergeTests(r.tests), run: r.run }
    return { key: JSON.stringify(tidy), tidy }
  })
  return keyed.sort((a, b) => compareText(a.key, b.key)).map((k) => k.tidy)
}

/**
 * The runs a recorder's claims describe, normalized: claims grouped by run id, file paths made
 * relative to the root. A claim whose run never arrived (its process died first) is dropped.
 */
export function groupRunRefs(refs: RunRef[], root: string): RecordedRun[] {
  const byId = new Map<string, { run?: RunJson; tests: TestRef[] }>()
  for (const ref of refs) {
    const entry = byId.get(ref.id) ?? { tests: [] }
    byId.set(ref.id, entry)
    if (ref.run && !entry.run) entry.run = ref.run
    entry.tests.push({ file: ref.file ? projectPath(ref.file, root) : null, name: ref.name ?? null, leaks: ref.leaks, ...(ref.verdict ? { verdict: ref.verdict } : {}) })
  }
  const runs: RecordedRun[] = []
  for (const { run, tests } of byId.values()) if (run) runs.push({ tests, run: normalizeRun(run, root) })
  return canonicalRuns(runs)
}

/** `heapspec-runs.json`'s text. */
export function serializeSavedRuns(runs: RecordedRun[]): string {
  const saved = { heapspecRuns: 1, runs: canonicalRuns(runs) } satisfies SavedRuns
  return jsonText(saved) + '\n'
}

/** The largest saved file heapspec reads: a run of a big suite is a few megabytes. */
export const MAX_SAVED_RUN_BYTES = 64 * 1024 * 1024

/** The most heapspec reads for one report, all saved files together. */
export const MAX_SAVED_RUNS_TOTAL_BYTES = 256 * 1024 * 1024

/** `heapspec: cannot read saved run FILE: REASON.` */
function unreadable(source: string, reason: string): string {
  return `heapspec: cannot read saved run ${printable(source)}: ${printable(reason)}.`
}

/**
 * The runs in a saved file: `heapspec-runs.json` (the reporters', `heapspec report`'s) or
 * `heapspec.json` (one run, from `heapspec run --out` or `--json`), checked against schema 1.
 * Throws one line naming the file and the first field that is wrong.
 */
export function parseSavedRuns(text: string, source: string): RecordedRun[] {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    // V8's message may quote the text, which need not be heapspec's (a key file a symbolic link points at)
    const position = /at position (\d+)/.exec((error as Error).message)?.[1]
    throw new BadOptionError(unreadable(source, `not JSON${position === undefined ? '' : ` (a syntax error at position ${position})`}`), { cause: error })
  }
  const checked = validateSavedRuns(data)
  if ('problem' in checked) throw new BadOptionError(unreadable(source, checked.problem))
  return checked.runs
}

/** Directories never searched for saved runs. */
const SKIPPED_DIRS = new Set(['node_modules', '.git'])

/**
 * The saved-run files under each path: a file as it is, or in every directory below a directory,
 * its `heapspec-runs.json` or else its `heapspec.json`. Directories in `exclude` (the report
 * being written) are skipped, so a merge never reads its own output. Throws when a path holds none.
 */
export function findSavedRuns(paths: string[], exclude: string[] = []): string[] {
  const excluded = new Set(exclude.filter((p) => existsSync(p)).map((p) => realpathSync(p)))
  const found: string[] = []
  const walk = (dir: string, depth: number): void => {
    if (excluded.has(realpathSync(dir))) return
    let entries: Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch (error) {
      throw new BadOptionError(`heapspec: cannot read ${printable(dir)}: ${printable((error as Error).message)}.`, { cause: error })
    }
    const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name))
    if (names.has(SAVED_RUNS_FILE)) found.push(join(dir, SAVED_RUNS_FILE))
    else if (names.has(SAVED_RUN_FILE)) found.push(join(dir, SAVED_RUN_FILE))
    if (depth >= 8) return
    for (const e of entries) if (e.isDirectory() && !SKIPPED_DIRS.has(e.name)) walk(join(dir, e.name), depth + 1)
  }
  for (const path of paths) {
    if (!existsSync(path)) throw new BadOptionError(`heapspec: cannot read ${printable(path)}: no such file or directory.`)
    const before = found.length
    if (statSync(path).isDirectory()) walk(path, 0)
    else found.push(path)
    if (found.length === before) {
      throw new BadOptionError(`heapspec: no saved runs in ${printable(path)} (looked for ${SAVED_RUNS_FILE}, written by the reporters and heapspec report, and ${SAVED_RUN_FILE}, written by heapspec run --out).`)
    }
  }
  return [...new Set(found)]
}

/**
 * The runs of every saved file under the paths, normalized against `root`, merged in canonical
 * order. Each file must be a regular file (a FIFO is refused, never waited on) within the size
 * limits, and valid; every file that is not gets its own line in the one error thrown.
 */
export function readSavedRuns(paths: string[], root: string, exclude: string[] = []): RecordedRun[] {
  const runs: RecordedRun[] = []
  const problems: string[] = []
  let total = 0
  for (const file of findSavedRuns(paths, exclude)) {
    let text: string
    try {
      const bytes = readRegularFile(file, MAX_SAVED_RUN_BYTES)
      total += bytes.length
      if (total > MAX_SAVED_RUNS_TOTAL_BYTES) {
        problems.push(unreadable(file, `the saved runs read add up to more than the ${formatMiB(MAX_SAVED_RUNS_TOTAL_BYTES)} heapspec reads for one report`))
        break
      }
      text = bytes.toString('utf8')
    } catch (error) {
      problems.push(unreadable(file, error instanceof UnreadableFile ? error.message : (error as Error).message))
      continue
    }
    try {
      for (const r of parseSavedRuns(text, file)) runs.push({ tests: r.tests, run: normalizeRun(r.run, root) })
    } catch (error) {
      if (!(error instanceof BadOptionError)) throw error
      problems.push(error.message)
    }
  }
  if (problems.length > 0) throw new BadOptionError(problems.join('\n'))
  return canonicalRuns(runs)
}

/**
 * Runs as the reports see them — each with the framework tests that made or checked it — and
 * their saved form, `heapspec-runs.json`, which `heapspec report` merges across shards and machines.
 */
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs'
import { isAbsolute, join, relative, sep } from 'node:path'
import { BadOptionError } from '../errors.js'
import { LEAK_KINDS, type Frame, type RunJson } from '../model/types.js'
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
    tests: run.tests.map((test) => (test.leaks ? { ...test, leaks: test.leaks.map((record) => ({ ...record, stack: record.stack.map(frame) })) } : test)),
    errors: run.errors.map((error) => ({
      ...error,
      stack: error.stack.map(frame),
      ...(error.auxStacks ? { auxStacks: error.auxStacks.map((aux) => ({ ...aux, stack: aux.stack.map(frame) })) } : {}),
    })),
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
  return JSON.stringify({ heapspecRuns: 1, runs: canonicalRuns(runs) } satisfies SavedRuns, null, 2) + '\n'
}

type Loose = Record<string, unknown>

function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isRunJson(value: unknown): value is RunJson {
  return (
    isObject(value) &&
    value.schema === 1 &&
    isObject(value.program) &&
    Array.isArray(value.program.command) &&
    isObject(value.leakSummary) &&
    LEAK_KINDS.every((k) => isObject((value.leakSummary as Loose)[k])) &&
    Array.isArray(value.leaks) &&
    value.leaks.every((l) => isObject(l) && Array.isArray(l.stack)) &&
    Array.isArray(value.tests) &&
    Array.isArray(value.errors)
  )
}

function isTestRef(value: unknown): value is TestRef {
  return (
    isObject(value) &&
    (value.file === null || typeof value.file === 'string') &&
    (value.name === null || typeof value.name === 'string') &&
    (value.leaks === null || (Array.isArray(value.leaks) && value.leaks.every((i) => Number.isInteger(i)))) &&
    (value.verdict === undefined || value.verdict === 'failed' || value.verdict === 'passed' || value.verdict === 'seen')
  )
}

/**
 * The runs in a saved file: `heapspec-runs.json` (the reporters', `heapspec report`'s) or
 * `heapspec.json` (one run, from `heapspec run --out` or `--json`). Throws, naming the file, on
 * anything else.
 */
export function parseSavedRuns(text: string, source: string): RecordedRun[] {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    throw new BadOptionError(`heapspec: cannot read ${source}: not JSON (${(error as Error).message}).`, { cause: error })
  }
  if (isRunJson(data)) return [{ tests: [], run: data }]
  if (isObject(data) && data.heapspecRuns === 1 && Array.isArray(data.runs) && data.runs.every((r) => isObject(r) && isRunJson(r.run) && Array.isArray(r.tests) && r.tests.every(isTestRef))) {
    return data.runs as RecordedRun[]
  }
  throw new BadOptionError(`heapspec: ${source} holds neither saved runs (${SAVED_RUNS_FILE}) nor a run (schema 1). Point at files written by heapspec run --out, heapspec report or the reporters.`)
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
    const entries = readdirSync(dir, { withFileTypes: true })
    const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name))
    if (names.has(SAVED_RUNS_FILE)) found.push(join(dir, SAVED_RUNS_FILE))
    else if (names.has(SAVED_RUN_FILE)) found.push(join(dir, SAVED_RUN_FILE))
    if (depth >= 8) return
    for (const e of entries) if (e.isDirectory() && !SKIPPED_DIRS.has(e.name)) walk(join(dir, e.name), depth + 1)
  }
  for (const path of paths) {
    if (!existsSync(path)) throw new BadOptionError(`heapspec: cannot read ${path}: no such file or directory.`)
    const before = found.length
    if (statSync(path).isDirectory()) walk(path, 0)
    else found.push(path)
    if (found.length === before) {
      throw new BadOptionError(`heapspec: no saved runs in ${path} (looked for ${SAVED_RUNS_FILE}, written by the reporters and heapspec report, and ${SAVED_RUN_FILE}, written by heapspec run --out).`)
    }
  }
  return [...new Set(found)]
}

/** The runs of every saved file under the paths, normalized against `root`, merged in canonical order. */
export function readSavedRuns(paths: string[], root: string, exclude: string[] = []): RecordedRun[] {
  const runs: RecordedRun[] = []
  for (const file of findSavedRuns(paths, exclude)) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw new BadOptionError(`heapspec: cannot read ${file}: ${(error as Error).message}.`, { cause: error })
    }
    for (const r of parseSavedRuns(text, file)) runs.push({ tests: r.tests, run: normalizeRun(r.run, root) })
  }
  return canonicalRuns(runs)
}

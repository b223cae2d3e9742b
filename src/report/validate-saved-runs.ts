/**
 * Saved runs checked against schema 1 before anything uses them: they come from other machines
 * (shards, CI artifacts), so every field a report reads is checked for its type and range, and
 * the first one that is wrong is named (`leaks[0].bytes must be a non-negative integer, got "x"
 * (string)`). Fields heapspec does not know are kept and ignored, as schema 1 allows.
 */
import { LEAK_KINDS, type RunJson } from '../model/types.js'
import type { RecordedRun } from './saved-runs.js'

/** How deeply a saved file may nest: the schema needs about ten levels; deeper is not heapspec's. */
export const MAX_DEPTH = 64

type Loose = Record<string, unknown>

/** The first thing wrong with a saved file, as a phrase naming the field. */
class Invalid extends Error {}

function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `"x" (string)`, `-1 (number)`, `null`, `{…} (object)`: the value found, short. */
function found(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)'
  if (value === null) return 'null'
  if (Array.isArray(value)) return '[…] (array)'
  if (typeof value === 'object') return '{…} (object)'
  const text = JSON.stringify(value)
  return `${text.length > 40 ? `${text.slice(0, 40)}…` : text} (${typeof value})`
}

function fail(path: string, expected: string, value: unknown): never {
  throw new Invalid(`${path} must be ${expected}, got ${found(value)}`)
}

function field(path: string, name: string | number): string {
  return typeof name === 'number' ? `${path}[${name}]` : path ? `${path}.${name}` : name
}

function object(value: unknown, path: string): Loose {
  if (!isObject(value)) fail(path, 'an object', value)
  return value
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, 'an array', value)
  return value
}

function count(o: Loose, name: string, path: string): void {
  const v = o[name]
  if (!Number.isSafeInteger(v) || (v as number) < 0) fail(field(path, name), 'a non-negative integer', v)
}

function string(o: Loose, name: string, path: string): void {
  if (typeof o[name] !== 'string') fail(field(path, name), 'a string', o[name])
}

function optionalString(o: Loose, name: string, path: string): void {
  if (o[name] !== undefined) string(o, name, path)
}

/** A field that is a string or null; a missing one reads as null (older writers left it out). */
function nullableString(o: Loose, name: string, path: string): void {
  if (o[name] === undefined) o[name] = null
  if (o[name] !== null && typeof o[name] !== 'string') fail(field(path, name), 'a string or null', o[name])
}

function nullableInteger(o: Loose, name: string, path: string, min: number): void {
  if (o[name] === undefined) o[name] = null
  const v = o[name]
  if (v !== null && (!Number.isSafeInteger(v) || (v as number) < min)) fail(field(path, name), `${min === 0 ? 'a non-negative' : 'an'} integer or null`, v)
}

function amount(value: unknown, path: string): void {
  const o = object(value, path)
  count(o, 'bytes', path)
  count(o, 'blocks', path)
}

function leakSummary(value: unknown, path: string): void {
  const o = object(value, path)
  for (const kind of LEAK_KINDS) amount(o[kind], field(path, kind))
}

function stack(value: unknown, path: string): void {
  array(value, path).forEach((frame, i) => {
    const at = field(path, i)
    const f = object(frame, at)
    nullableString(f, 'fn', at)
    nullableString(f, 'file', at)
    nullableInteger(f, 'line', at, 0)
    nullableString(f, 'object', at)
    optionalString(f, 'pc', at)
  })
}

function lossRecords(value: unknown, path: string): void {
  array(value, path).forEach((record, i) => {
    const at = field(path, i)
    const r = object(record, at)
    if (!(LEAK_KINDS as readonly unknown[]).includes(r.kind)) fail(field(at, 'kind'), `one of ${LEAK_KINDS.map((k) => `"${k}"`).join(', ')}`, r.kind)
    count(r, 'bytes', at)
    count(r, 'blocks', at)
    nullableString(r, 'test', at)
    stack(r.stack, field(at, 'stack'))
    optionalString(r, 'suppression', at)
  })
}

function memoryErrors(value: unknown, path: string): void {
  array(value, path).forEach((error, i) => {
    const at = field(path, i)
    const e = object(error, at)
    string(e, 'kind', at)
    optionalString(e, 'what', at)
    if (e.test !== undefined) nullableString(e, 'test', at)
    stack(e.stack, field(at, 'stack'))
    if (e.auxStacks !== undefined) {
      array(e.auxStacks, field(at, 'auxStacks')).forEach((aux, j) => {
        const auxAt = field(field(at, 'auxStacks'), j)
        const a = object(aux, auxAt)
        string(a, 'what', auxAt)
        stack(a.stack, field(auxAt, 'stack'))
      })
    }
    // optional in schema 1: how many times it happened
    if (e.count !== undefined) count(e, 'count', at)
  })
}

/** Most points a saved heap series may hold: heapspec writes 512 at most; the chart draws each one. */
export const MAX_SERIES_POINTS = 4096

/** A peak (`{ bytes, sites }`, with `heapBytes` for a test case's). */
function peak(value: unknown, path: string, heap: boolean): void {
  const o = object(value, path)
  count(o, 'bytes', path)
  if (heap) count(o, 'heapBytes', path)
  array(o.sites, field(path, 'sites')).forEach((site, i) => {
    const at = field(field(path, 'sites'), i)
    const s = object(site, at)
    count(s, 'bytes', at)
    count(s, 'blocks', at)
    stack(s.stack, field(at, 'stack'))
  })
}

/** A heap series: [event, bytes] points in event order, and spans naming test cases by index. */
function heapSeries(value: unknown, path: string, tests: number): void {
  const o = object(value, path)
  const pointsPath = field(path, 'points')
  const points = array(o.points, pointsPath)
  if (points.length > MAX_SERIES_POINTS) fail(pointsPath, `at most ${MAX_SERIES_POINTS} points`, `${points.length} points`)
  let last = -1
  points.forEach((point, i) => {
    const at = field(pointsPath, i)
    const p = array(point, at)
    if (p.length !== 2 || !p.every((v) => Number.isSafeInteger(v) && (v as number) >= 0)) fail(at, 'a pair [event, bytes] of non-negative integers', point)
    if ((p[0] as number) <= last) fail(field(at, 0), `an event after the point before's (${last})`, p[0])
    last = p[0] as number
  })
  array(o.spans, field(path, 'spans')).forEach((span, i) => {
    const at = field(field(path, 'spans'), i)
    const s = object(span, at)
    if (!Number.isSafeInteger(s.test) || (s.test as number) < 0 || (s.test as number) >= tests) fail(field(at, 'test'), tests === 0 ? 'absent (the run has no test cases)' : `an index into tests (0 to ${tests - 1})`, s.test)
    count(s, 'from', at)
    count(s, 'to', at)
    if ((s.to as number) < (s.from as number)) fail(field(at, 'to'), `at least from (${s.from as number})`, s.to)
  })
}

function run(value: unknown, path: string): RunJson {
  const o = object(value, path)
  if (o.schema !== 1) fail(field(path, 'schema'), '1', o.schema)
  string(o, 'backend', path)
  const programPath = field(path, 'program')
  const program = object(o.program, programPath)
  array(program.command, field(programPath, 'command')).forEach((word, i) => {
    if (typeof word !== 'string') fail(field(field(programPath, 'command'), i), 'a string', word)
  })
  nullableInteger(program, 'exitCode', programPath, Number.MIN_SAFE_INTEGER)
  nullableString(program, 'signal', programPath)
  if (program.timedOut !== undefined && typeof program.timedOut !== 'boolean') fail(field(programPath, 'timedOut'), 'true or false', program.timedOut)
  const totals = object(o.totals, field(path, 'totals'))
  for (const name of ['allocations', 'frees', 'bytesAllocated']) count(totals, name, field(path, 'totals'))
  amount(o.inUseAtExit, field(path, 'inUseAtExit'))
  leakSummary(o.leakSummary, field(path, 'leakSummary'))
  lossRecords(o.leaks, field(path, 'leaks'))
  if (o.suppressed !== undefined) amount(o.suppressed, field(path, 'suppressed'))
  optionalString(o, 'incomplete', path)
  const tests = array(o.tests, field(path, 'tests'))
  tests.forEach((test, i) => {
    const at = field(field(path, 'tests'), i)
    const t = object(test, at)
    string(t, 'name', at)
    for (const name of ['allocations', 'frees', 'bytesAllocated']) count(t, name, at)
    leakSummary(t.leakSummary, field(at, 'leakSummary'))
    // optional in schema 1: the test case's own loss records and what suppressions kept out
    if (t.leaks !== undefined) lossRecords(t.leaks, field(at, 'leaks'))
    if (t.suppressed !== undefined) amount(t.suppressed, field(at, 'suppressed'))
    if (t.errors !== undefined) memoryErrors(t.errors, field(at, 'errors'))
    if (t.peak !== undefined) peak(t.peak, field(at, 'peak'), true)
  })
  // optional in schema 1: the run's peak and its heap series (not under valgrind)
  if (o.peak !== undefined) peak(o.peak, field(path, 'peak'), false)
  if (o.heapSeries !== undefined) heapSeries(o.heapSeries, field(path, 'heapSeries'), tests.length)
  memoryErrors(o.errors, field(path, 'errors'))
  if (o.warnings !== undefined) {
    array(o.warnings, field(path, 'warnings')).forEach((w, i) => {
      if (typeof w !== 'string') fail(field(field(path, 'warnings'), i), 'a string', w)
    })
  }
  return o as unknown as RecordedRun['run']
}

function recordedRun(value: unknown, path: string): RecordedRun {
  const o = object(value, path)
  const checked = run(o.run, field(path, 'run'))
  array(o.tests, field(path, 'tests')).forEach((test, i) => {
    const at = field(field(path, 'tests'), i)
    const t = object(test, at)
    nullableString(t, 'file', at)
    nullableString(t, 'name', at)
    if (t.verdict !== undefined && t.verdict !== 'failed' && t.verdict !== 'passed' && t.verdict !== 'seen') fail(field(at, 'verdict'), '"failed", "passed" or "seen"', t.verdict)
    if (t.leaks === undefined) t.leaks = null
    if (t.leaks !== null) {
      const leaks = array(t.leaks, field(at, 'leaks'))
      leaks.forEach((index, j) => {
        if (!Number.isSafeInteger(index) || (index as number) < 0 || (index as number) >= checked.leaks.length) {
          fail(field(field(at, 'leaks'), j), checked.leaks.length === 0 ? 'absent (the run has no loss records)' : `an index into ${field(path, 'run')}.leaks (0 to ${checked.leaks.length - 1})`, index)
        }
      })
    }
  })
  return o as unknown as RecordedRun
}

/** Whether the value nests deeper than MAX_DEPTH: walked with a stack of its own, as JSON.parse nests arbitrarily deep. */
function nestsTooDeep(value: unknown): boolean {
  const pending: [unknown, number][] = [[value, 0]]
  while (pending.length > 0) {
    const [v, depth] = pending.pop()!
    if (typeof v !== 'object' || v === null) continue
    if (depth >= MAX_DEPTH) return true
    for (const item of Array.isArray(v) ? v : Object.values(v)) if (typeof item === 'object' && item !== null) pending.push([item, depth + 1])
  }
  return false
}

/** Where the value nests deeper than MAX_DEPTH, if it does (the path is worked out only then). */
function tooDeep(value: unknown): string | undefined {
  if (!nestsTooDeep(value)) return undefined
  const pending: [unknown, string, number][] = [[value, '', 0]]
  while (pending.length > 0) {
    const [v, path, depth] = pending.pop()!
    if (typeof v !== 'object' || v === null) continue
    if (depth >= MAX_DEPTH) {
      if (path.length <= 80) return path
      const cut = path.slice(0, 60)
      return `${cut.slice(0, Math.max(cut.lastIndexOf('['), cut.lastIndexOf('.'), 1))}…`
    }
    if (Array.isArray(v)) v.forEach((item, i) => pending.push([item, field(path, i), depth + 1]))
    else for (const [k, item] of Object.entries(v)) pending.push([item, field(path, /^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)), depth + 1])
  }
  return undefined
}

/**
 * The runs a parsed saved file holds — `heapspec-runs.json` (`{ heapspecRuns: 1, runs }`) or one
 * run (`heapspec.json`, schema 1) — or the first thing wrong with it, as a phrase naming the field.
 */
export function validateSavedRuns(data: unknown): { runs: RecordedRun[] } | { problem: string } {
  const deep = tooDeep(data)
  if (deep !== undefined) return { problem: `${deep} nests more than ${MAX_DEPTH} levels deep` }
  try {
    if (isObject(data) && 'heapspecRuns' in data) {
      if (data.heapspecRuns !== 1) fail('heapspecRuns', '1', data.heapspecRuns)
      return { runs: array(data.runs, 'runs').map((r, i) => recordedRun(r, field('runs', i))) }
    }
    if (isObject(data) && 'schema' in data) return { runs: [{ tests: [], run: run(data, '') }] }
    return { problem: 'it holds neither saved runs (heapspec-runs.json, with "heapspecRuns": 1) nor a run (heapspec.json, with "schema": 1); point at files written by heapspec run --out, heapspec report or the reporters' }
  } catch (error) {
    if (error instanceof Invalid) return { problem: error.message }
    throw error
  }
}

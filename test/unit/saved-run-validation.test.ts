import { describe, expect, it } from 'vitest'
import type { RunJson } from '../../src/model/types.js'
import { printable, printableLineStart } from '../../src/report/printable.js'
import { parseSavedRuns, serializeSavedRuns } from '../../src/report/saved-runs.js'
import { validateSavedRuns } from '../../src/report/validate-saved-runs.js'
import { parserRun } from '../matchers/run-fixture.js'

// Saved runs come from other machines: every field a report reads is checked against schema 1,
// and the first wrong one named, in one line.

/** A run as an attacker edits it: any field, any value. */
type Loose = Record<string, any>

/** The problem validateSavedRuns finds in parserRun() changed by `change`. */
function problemOf(change: (run: Loose) => void): string | undefined {
  const run = parserRun() as unknown as Loose
  change(run)
  const checked = validateSavedRuns(JSON.parse(JSON.stringify(run)))
  return 'problem' in checked ? checked.problem : undefined
}

describe('a saved run (schema 1) is refused, naming the field', () => {
  const cases: [string, (run: Loose) => void, string][] = [
    ['a byte count given as a string', (r) => (r.leaks[0].bytes = 'x'), 'leaks[0].bytes must be a non-negative integer, got "x" (string)'],
    ['markup for a byte count', (r) => (r.leaks[1].blocks = '<img src=x onerror=alert(1)>'), 'leaks[1].blocks must be a non-negative integer, got "<img src=x onerror=alert(1)>" (string)'],
    ['a negative count', (r) => (r.totals.frees = -1), 'totals.frees must be a non-negative integer, got -1 (number)'],
    ['a fraction', (r) => (r.inUseAtExit.blocks = 1.5), 'inUseAtExit.blocks must be a non-negative integer, got 1.5 (number)'],
    ['a count past 2^53', (r) => (r.leakSummary.definite.bytes = 1e300), 'leakSummary.definite.bytes must be a non-negative integer, got 1e+300 (number)'],
    ['a wrong kind', (r) => (r.leaks[2].kind = 'lost'), 'leaks[2].kind must be one of "definite", "indirect", "possible", "reachable", got "lost" (string)'],
    ['a null frame', (r) => (r.leaks[0].stack = [null]), 'leaks[0].stack[0] must be an object, got null'],
    ['a file given as a number', (r) => (r.leaks[0].stack[1].file = 123), 'leaks[0].stack[1].file must be a string or null, got 123 (number)'],
    ['a negative line', (r) => (r.leaks[0].stack[0].line = -4), 'leaks[0].stack[0].line must be a non-negative integer or null, got -4 (number)'],
    ['a line given as markup', (r) => (r.leaks[0].stack[0].line = '<b>'), 'leaks[0].stack[0].line must be a non-negative integer or null, got "<b>" (string)'],
    ['a stack that is no array', (r) => (r.leaks[3].stack = 'main'), 'leaks[3].stack must be an array, got "main" (string)'],
    ['a missing kind of leak summary', (r) => delete r.leakSummary.possible, 'leakSummary.possible must be an object, got nothing (the field is missing)'],
    ['a command that is no array', (r) => (r.program.command = 'rm -rf /'), 'program.command must be an array, got "rm -rf /" (string)'],
    ['a command word that is no string', (r) => (r.program.command = ['a', 7]), 'program.command[1] must be a string, got 7 (number)'],
    ['an exit code given as a string', (r) => (r.program.exitCode = '0'), 'program.exitCode must be an integer or null, got "0" (string)'],
    ['a test case name that is an object', (r) => (r.tests[1].name = { a: 1 }), 'tests[1].name must be a string, got {…} (object)'],
    ['errors that are no array', (r) => (r.errors = {}), 'errors must be an array, got {…} (object)'],
    ['a test case\'s errors that are no array', (r) => (r.tests[0].errors = 'x'), 'tests[0].errors must be an array, got "x" (string)'],
    ['a test case\'s error without a kind', (r) => (r.tests[0].errors = [{ test: null, stack: [] }]), 'tests[0].errors[0].kind must be a string, got nothing (the field is missing)'],
    ['an error count given as a string', (r) => (r.errors = [{ kind: 'invalid-free', test: null, stack: [], count: '2' }]), 'errors[0].count must be a non-negative integer, got "2" (string)'],
    ['an error without a stack', (r) => (r.errors = [{ kind: 'invalid-free' }]), 'errors[0].stack must be an array, got nothing (the field is missing)'],
    ['a warning that is no string', (r) => (r.warnings = ['ok', null]), 'warnings[1] must be a string, got null'],
    ['another schema', (r) => (r.schema = '1'), 'schema must be 1, got "1" (string)'],
    ['a peak given as a string', (r) => (r.peak = { bytes: '1 MiB', sites: [] }), 'peak.bytes must be a non-negative integer, got "1 MiB" (string)'],
    ['a peak site without a stack', (r) => (r.peak = { bytes: 8, sites: [{ bytes: 8, blocks: 1 }] }), 'peak.sites[0].stack must be an array, got nothing (the field is missing)'],
    ["a test case's peak without the heap's", (r) => (r.tests[0].peak = { bytes: 8, sites: [] }), 'tests[0].peak.heapBytes must be a non-negative integer, got nothing (the field is missing)'],
    ['a series point that is no pair', (r) => (r.heapSeries = { points: [[1, 2, 3]], spans: [] }), 'heapSeries.points[0] must be a pair [event, bytes] of non-negative integers, got […] (array)'],
    ['series points out of order', (r) => (r.heapSeries = { points: [[4, 1], [2, 1]], spans: [] }), "heapSeries.points[1][0] must be an event after the point before's (4), got 2 (number)"],
    ['a series of too many points', (r) => (r.heapSeries = { points: Array.from({ length: 4097 }, (_, i) => [i, 0]), spans: [] }), 'heapSeries.points must be at most 4096 points, got "4097 points" (string)'],
    ['a span of a test case the run does not have', (r) => (r.heapSeries = { points: [], spans: [{ test: 2, from: 0, to: 1 }] }), 'heapSeries.spans[0].test must be an index into tests (0 to 1), got 2 (number)'],
    ['a span that ends before it begins', (r) => (r.heapSeries = { points: [], spans: [{ test: 0, from: 5, to: 1 }] }), 'heapSeries.spans[0].to must be at least from (5), got 1 (number)'],
  ]
  it.each(cases)('%s', (_name, change, problem) => {
    expect(problemOf(change)).toBe(problem)
  })

  it('long values and control characters are shown short and escaped', () => {
    expect(problemOf((r) => (r.leaks[0].bytes = `\x1b[31m${'9'.repeat(100)}`))).toBe('leaks[0].bytes must be a non-negative integer, got "\\u001b[31m99999999999999999999999999999… (string)')
  })

  it('deep nesting, anywhere, even in fields heapspec does not know', () => {
    // as JSON.parse reads it: deeper than any recursive walk (JSON.stringify among them) could follow
    const text = JSON.stringify(parserRun()).replace(/}$/, `,"extra":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)
    expect(() => parseSavedRuns(text, 'deep/heapspec.json')).toThrow(`heapspec: cannot read saved run deep/heapspec.json: extra${'[0]'.repeat(18)}… nests more than 64 levels deep.`)
  })

  it('a valid run passes; frame fields an older writer left out read as null; unknown fields are kept', () => {
    const run = JSON.parse(JSON.stringify(parserRun())) as Loose
    delete run.leaks[0].stack[0].object
    run.future = { bytes: 12 }
    // the optional peaks and heap series, as the preload and gdb backends write them
    run.peak = { bytes: 96, sites: [{ bytes: 96, blocks: 2, stack: run.leaks[0].stack }] }
    run.tests[0].peak = { bytes: 96, heapBytes: 128, sites: [] }
    run.heapSeries = { points: [[1, 32], [2, 96]], spans: [{ test: 0, from: 0, to: 2 }] }
    const checked = validateSavedRuns(run)
    expect('runs' in checked && checked.runs[0]!.run.leaks[0]!.stack[0]!.object).toBe(null)
    expect('runs' in checked && (checked.runs[0]!.run as unknown as Loose).future).toEqual({ bytes: 12 })
    expect('runs' in checked && checked.runs[0]!.run.heapSeries).toEqual(run.heapSeries)
  })
})

describe('saved runs (heapspec-runs.json) are refused, naming the field', () => {
  const saved = (change: (data: Loose) => void): string => {
    const data = JSON.parse(serializeSavedRuns([{ tests: [{ file: 'test/a.test.ts', name: 'a', leaks: [0, 1] }], run: parserRun() as RunJson }])) as Loose
    change(data)
    return JSON.stringify(data)
  }
  const cases: [string, (data: Loose) => void, string][] = [
    ['a record index past the run’s records', (d) => (d.runs[0].tests[0].leaks = [7]), 'runs[0].tests[0].leaks[0] must be an index into runs[0].run.leaks (0 to 3), got 7 (number)'],
    ['a test name that is a number', (d) => (d.runs[0].tests[0].name = 5), 'runs[0].tests[0].name must be a string or null, got 5 (number)'],
    ['a run’s field', (d) => (d.runs[0].run.leaks[1].stack = [null]), 'runs[0].run.leaks[1].stack[0] must be an object, got null'],
    ['runs that are no array', (d) => (d.runs = 'all'), 'runs must be an array, got "all" (string)'],
    ['another version', (d) => (d.heapspecRuns = 2), 'heapspecRuns must be 1, got 2 (number)'],
  ]
  it.each(cases)('%s', (_name, change, problem) => {
    expect(() => parseSavedRuns(saved(change), 'shard/heapspec-runs.json')).toThrow(`heapspec: cannot read saved run shard/heapspec-runs.json: ${problem}.`)
  })

  it('the file name is printed safely too', () => {
    expect(() => parseSavedRuns('[]', 'shard\n::stop-commands::x/heapspec.json')).toThrow(/^heapspec: cannot read saved run shard\\n::stop-commands::x\/heapspec\.json: it holds neither/)
  })
})

describe('text from a saved run, printed', () => {
  it('shows control characters as escapes, so names cannot end, begin or colour a line', () => {
    expect(printable('a\nb\r\tc\x1b[31md\x00\x7f\x9b\u2028\u202e')).toBe('a\\nb\\r\\tc\\x1b[31md\\x00\\x7f\\x9b\\u2028\\u202e')
    expect(printable('x'.repeat(2005))).toBe(`${'x'.repeat(2000)}… (5 more characters)`)
    expect(printableLineStart('::stop-commands::tok')).toBe('\\::stop-commands::tok')
    expect(printableLineStart('  ##[set-env name=x]y')).toBe('  \\##[set-env name=x]y')
    expect(printableLineStart('std::vector::push_back')).toBe('std::vector::push_back')
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import { HeapRun } from '../../src/run.js'
import { announceCaptureStart, announceCheck, announceRun, observeRuns, type RunObserver } from '../../src/run-events.js'
import { parserRun } from '../matchers/run-fixture.js'

/** Observes the registry for one test; returns what it heard. */
function listen(): string[] {
  const heard: string[] = []
  const ids = new Map<string, string>()
  const short = (id: string) => ids.get(id) ?? (ids.set(id, `run${ids.size + 1}`), ids.get(id)!)
  const observer: RunObserver = {
    captureStarted: (s) => heard.push(`started ${s.command.join(' ')} (${s.backend})`),
    captureEnded: () => heard.push('ended'),
    runMade: (id) => heard.push(`made ${short(id)}`),
    runChecked: (id, _run, leaks, context, verdict) => heard.push(`checked ${short(id)} ${JSON.stringify(leaks)} by ${(context as { name: string }).name}${verdict === 'seen' ? '' : ` (${verdict})`}`),
  }
  stop = observeRuns(observer)
  return heard
}

let stop = (): void => {}
afterEach(() => stop())

describe('run events: how runs reach the reporters', () => {
  it('tell the observers of each capture, each run made and each run or slice checked', () => {
    const heard = listen()
    const ended = announceCaptureStart(['./prog', '--flag'], 'gdb')
    const run = new HeapRun(parserRun())
    announceRun(run.json)
    announceRun(run.json) // the same run again: nothing new
    ended()
    announceCheck(run, { name: 'test 1' })
    announceCheck(run.test('parses header'), { name: 'test 2' })
    // a clean slice is traced through its leak summary, which it shares with the run
    announceCheck(run.test('parses empty'), { name: 'test 3' })
    announceCheck(run.json, { name: 'test 4' })
    expect(heard).toEqual([
      'started ./prog --flag (gdb)',
      'made run1',
      'ended',
      'checked run1 null by test 1',
      'checked run1 [0,1] by test 2',
      'checked run1 [] by test 3',
      'checked run1 null by test 4',
    ])
  })

  it('trace a slice made from the records of a run they saw, and ignore one of a run they never saw', () => {
    const heard = listen()
    const run = new HeapRun(parserRun())
    announceRun(run.json)
    const outside = { name: '(outside any test case)', totals: run.json.totals, leakSummary: { ...run.json.leakSummary }, leaks: run.leaks.filter((l) => l.test === null) }
    announceCheck(outside, { name: 'outside' })
    announceCheck(new HeapRun(parserRun()).test('parses header'), { name: 'unknown' })
    announceCheck('not a run', { name: 'junk' })
    expect(heard).toEqual(['made run1', 'checked run1 [2,3] by outside'])
  })

  it("carry a leak matcher's verdict, on the records of the kinds it judged, each test case's own records included", () => {
    const heard = listen()
    const json = parserRun()
    // a test case whose own records the run carries (lost at its end, freed by exit: in no exit record)
    const own = { kind: 'possible' as const, bytes: 8, blocks: 1, test: 'parses empty', stack: [] }
    json.tests = json.tests.map((t) => (t.name === 'parses empty' ? { ...t, leaks: [own] } : t))
    const run = new HeapRun(json)
    announceRun(run.json)
    announceCheck(run, { name: 'whole' }, { passed: false, kinds: ['definite'] })
    announceCheck(run.test('parses empty'), { name: 'own' }, { passed: true, kinds: ['definite', 'indirect', 'possible'] })
    // reportRecords: parses empty's own record first, then the exit's records
    expect(heard).toEqual(['made run1', 'checked run1 [2] by whole (failed)', 'checked run1 [0] by own (passed)'])
  })

  it('share one registry between copies of heapspec loaded in one process (the ESM build and a CommonJS bundle)', () => {
    const registry = (globalThis as Record<symbol, unknown>)[Symbol.for('heapspec.run-events')]
    expect(registry).toMatchObject({ observers: expect.any(Set) })
  })
})

import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { runNode, type HeapRun } from '../../src/index.js'
import { FAILING_KINDS } from '../../src/report/text.js'
import { LEAK_KINDS, type Amount, type LeakKind } from '../../src/model/types.js'
import { ROOT } from '../support/debugee.js'
import { memcheck, type MemcheckRecord, type MemcheckVerdict } from '../support/memcheck.js'

// debugee/addon: a C++ addon written the way addon authors write one (an Entry with a malloc'd key,
// a std::vector<int> whose growth resolves to the node binary's own copy of _M_realloc_insert, a
// std::string on the heap), over a shared library of its own, with a leak on libuv's thread pool.
// Each backend's figures for each test case are held to plain memcheck's loss records on the same
// command line: those with a frame of the addon or its library, placed in the test case whose
// addon function is on their stack.
const SCRIPT = join(ROOT, 'debugee', 'addon', 'entries.mjs')
const CHURN = 200
const command = [process.execPath, SCRIPT, String(CHURN)]

/** The test case a memcheck record belongs to: the addon function (entries.cc) its stack passes through. */
const TEST_OF: [RegExp, string][] = [
  [/^keep\(/, 'keep'],
  [/^leak\(/, 'leak'],
  [/^shelve\(/, 'shelve'],
  [/^pool_execute\(/, 'poolLeak'],
  [/^churn\(/, 'churn'],
]
const TESTS = TEST_OF.map(([, name]) => name)
const ADDON_FRAME = /\((?:entries\.cc|shelf\.c):\d+\)$|entries\.node|libshelf\.so/

function testOf(record: MemcheckRecord): string | undefined {
  for (const frame of record.frames) for (const [pattern, test] of TEST_OF) if (pattern.test(frame)) return test
  return undefined
}

type ByKind = Record<LeakKind, Amount>
const none = (): ByKind => Object.fromEntries(LEAK_KINDS.map((k) => [k, { bytes: 0, blocks: 0 }])) as ByKind

/** memcheck's records with an addon frame, summed by test case and kind. */
function memcheckByTest(verdict: MemcheckVerdict): Map<string, ByKind> {
  const byTest = new Map(TESTS.map((t) => [t, none()]))
  for (const record of verdict.records.filter((r) => r.frames.some((f) => ADDON_FRAME.test(f)))) {
    const test = testOf(record)
    if (test === undefined) throw new Error(`memcheck's record with an addon frame in no test case: ${record.frames.join(' < ')}`)
    const sum = byTest.get(test)![record.kind]
    sum.bytes += record.bytes
    sum.blocks += record.blocks
  }
  return byTest
}

/** heapspec's records at exit (the run's own `leaks`), summed the same way. */
function heapspecByTest(run: HeapRun): Map<string, ByKind> {
  const byTest = new Map(TESTS.map((t) => [t, none()]))
  for (const record of run.toJSON().leaks) {
    const sum = byTest.get(record.test ?? '(none)')?.[record.kind]
    if (!sum) throw new Error(`a record outside the test cases: ${record.kind} ${record.bytes} bytes at ${record.stack[0]?.fn}`)
    sum.bytes += record.bytes
    sum.blocks += record.blocks
  }
  return byTest
}

let reference: MemcheckVerdict
beforeAll(async () => {
  // as deep as a backend looks for the addon's code, so no record is placed by a cut stack
  reference = await memcheck(command, { valgrindArgs: ['--num-callers=40'] })
}, 180_000)

it('memcheck sees, by construction, each test case\'s blocks (the reference is what the addon does)', () => {
  expect(reference.exitCode).toBe(0)
  expect(reference.stdout).toBe(`entries: done (${CHURN} churned)\n`)
  const byTest = memcheckByTest(reference)
  // leak: the Entry (64 bytes), its key "leaked-one" (11), its vector grown to 5 ints (capacity
  // 8: 32 bytes, through node's _M_realloc_insert) and its name (61: libstdc++'s _M_mutate)
  expect(byTest.get('leak')).toMatchObject({ definite: { bytes: 64, blocks: 1 }, indirect: { bytes: 104, blocks: 3 } })
  // keep: the same Entry, lost at exit when the static registry's destructor frees its buffer
  expect(byTest.get('keep')).toMatchObject({ definite: { bytes: 64, blocks: 1 }, indirect: { bytes: 9 + 16 + 61, blocks: 3 } })
  // shelve: libshelf's shelf (16 bytes) and its 10 items (40), allocated in the library
  expect(byTest.get('shelve')).toMatchObject({ definite: { bytes: 16, blocks: 1 }, indirect: { bytes: 40, blocks: 1 } })
  // poolLeak: 100 bytes malloc'd on a thread-pool thread
  expect(byTest.get('poolLeak')).toMatchObject({ definite: { bytes: 100, blocks: 1 }, indirect: { bytes: 0, blocks: 0 } })
  expect(byTest.get('churn')).toEqual(none())
})

const runs = new Map<string, HeapRun>()
describe.each(['preload', 'gdb', 'valgrind'] as const)('the entries addon under %s', (backend) => {
  let run: HeapRun
  beforeAll(async () => {
    run = await runNode(SCRIPT, { backend, args: [String(CHURN)] })
    runs.set(backend, run)
  }, 180_000)

  it('runs the script as plain node does', () => {
    expect(run.json.program).toMatchObject({ exitCode: 0, signal: null })
    expect(run.stdout).toBe(`entries: done (${CHURN} churned)\n`)
    expect(run.toJSON().backend).toBe(backend)
  })

  it("equals memcheck's addon records, test case by test case and kind by kind", () => {
    expect(heapspecByTest(run)).toEqual(memcheckByTest(reference))
  })

  it('answers for the same blocks in each test case, and counts what the addon allocated', () => {
    const tests = Object.fromEntries(run.toJSON().tests.map((t) => [t.name, t]))
    const lost = (name: string): number => FAILING_KINDS.reduce((sum, k) => sum + tests[name]!.leakSummary[k].bytes, 0)
    expect(TESTS.map(lost)).toEqual([150, 168, 56, 100, 0])
    // churn: per Entry the Entry, its key, one vector buffer and one string buffer, all freed
    expect(tests.churn).toMatchObject({ allocations: 4 * CHURN, frees: 4 * CHURN })
    expect(tests.shelve).toMatchObject({ allocations: 2, frees: 0, bytesAllocated: 56 })
    // callback: V8 compiles a function while the addon's call is below V8's code on the stack
    // (no unwind tables there: the walk goes on by the frame pointer); all of it freed again
    expect(tests.callback!.allocations).toBeGreaterThan(0)
    expect(tests.callback!.frees).toBe(tests.callback!.allocations)
  })
})

it("counts the same allocations of V8's, compiling a callback under the addon's call, on every backend", () => {
  // a stack deep in V8 whose addon frame is the 16th below the allocator: gdb, stopping in libc's
  // malloc under libstdc++'s operator new, walks one frame further there
  const callback = (backend: string): unknown => {
    const { allocations, frees, bytesAllocated } = runs.get(backend)!.toJSON().tests.find((t) => t.name === 'callback')!
    return { allocations, frees, bytesAllocated }
  }
  expect(runs.size).toBe(3)
  expect(callback('gdb')).toEqual(callback('preload'))
  expect(callback('valgrind')).toEqual(callback('preload'))
})

// debugee/addon/worker.mjs: a Worker's exit unloads the addon it loaded, and the main thread loads
// it anew; the gdb backend had patched the first copy only, so the second copy's leak went unseen,
// and the valgrind backend, reading the addon's mappings at test boundaries only, never saw the
// Worker's copy (its leak went to in_main).
describe('the entries addon unloaded with a Worker and loaded again by the main thread', () => {
  const WORKER = join(ROOT, 'debugee', 'addon', 'worker.mjs')
  let reference: MemcheckVerdict
  beforeAll(async () => {
    reference = await memcheck([process.execPath, WORKER], { valgrindArgs: ['--num-callers=40'] })
  }, 180_000)

  it.each(['preload', 'gdb', 'valgrind'] as const)('%s: each copy answers for its leak in its own test case, as memcheck counts them', async (backend) => {
    const run = await runNode(WORKER, { backend })
    expect(run.stdout).toBe('worker: done\n')
    expect(run.json.program).toMatchObject({ exitCode: 0, signal: null })
    const addonLost = reference.records.filter((r) => r.kind === 'definite' && r.frames.some((f) => ADDON_FRAME.test(f)))
    expect(addonLost.map((r) => r.bytes)).toEqual([64, 64])
    expect(run.json.leakSummary.definite).toEqual({ bytes: 128, blocks: 2 })
    expect(run.json.tests.map((t) => [t.name, t.leakSummary.definite.bytes, t.leakSummary.indirect.bytes])).toEqual([
      ['in_worker', 64, 104],
      ['in_main', 64, 104],
    ])
  }, 120_000)
})

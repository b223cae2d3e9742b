import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { CaptureSpec } from '../../src/capture/backend.js'
import { elfNamesSymbol } from '../../src/capture/valgrind/elf-symbols.js'
import { sessionReason } from '../../src/capture/valgrind/vgdb-session.js'
import { CannotStartError, CaptureFailedError } from '../../src/errors.js'
import { runNative } from '../../src/index.js'
import { normalizeOptions } from '../../src/options.js'
import type { LeakSummary, TestCaseSummary } from '../../src/model/types.js'
import { program, ROOT } from '../support/debugee.js'
import { counts, figures, summary, TESTS_C, TESTS_C_SITES, testSites } from '../support/test-cases.js'

// Per-test attribution under the Valgrind backend: gdb attached to memcheck's gdbserver stops the
// program at each test-case boundary, where memcheck lists the live blocks and the heap totals.
// Real valgrind and gdb; no test here skips when either is missing.

// debugee/tests.c: memcheck agrees with the GDB backend on every test case's figures.
const EXPECTED = TESTS_C

const rejection = async (promise: Promise<unknown>): Promise<Error> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(Error)
  return error as Error
}

function stat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { state: fields[0]!, ppid: Number(fields[1]) }
  } catch {
    return undefined
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return ''
  }
}

/**
 * Watches a capture's processes while `run` goes: valgrind (its program's arguments hold
 * `marker`), the gdb this process starts for it, and everything below that gdb (vgdb). Returns
 * those still alive (not even a zombie) once the run has returned.
 */
async function survivors<T>(marker: string, run: () => Promise<T>): Promise<{ result: T | Error; seen: string[]; alive: string[] }> {
  const seen = new Map<number, string>()
  const look = (): void => {
    const all = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number)
    for (const pid of all) {
      const line = cmdline(pid)
      const parent = stat(pid)?.ppid
      if (line.includes(marker)) seen.set(pid, line)
      else if (parent === process.pid && line.includes('heapspec_vgdb.py')) seen.set(pid, line)
      else if (parent !== undefined && seen.has(parent) && line !== '') seen.set(pid, line)
    }
  }
  const timer = setInterval(look, 20)
  let result: T | Error
  try {
    result = await run()
  } catch (error) {
    result = error as Error
  } finally {
    clearInterval(timer)
  }
  const alive = [...seen].filter(([pid]) => {
    const s = stat(pid)
    return s !== undefined && s.state !== 'Z'
  })
  return { result, seen: [...seen.values()], alive: alive.map(([pid, line]) => `${pid} ${line}`) }
}

beforeAll(() => {
  const names = ['tests', 'tests-nomarkers', 'tests-misordered', 'tests-repeated', 'hang', 'crash', 'errors', 'definite', 'definite-stripped']
  execFileSync('make', ['-s', '-C', join(ROOT, 'debugee'), ...names.map((n) => `build/${n}`)], { stdio: 'inherit' })
})

describe('per-test attribution, valgrind backend', () => {
  it.each([
    ['heapspec.h markers', 'tests', {}],
    ['--tests functions', 'tests-nomarkers', { tests: /^test_/ }],
  ] as const)('with %s: exact figures per test case, from memcheck', async (_how, name, options) => {
    const run = await runNative([program(name)], { backend: 'valgrind', stdio: 'pipe', ...options })
    expect(run.json.backend).toBe('valgrind')
    expect(figures(run.tests)).toEqual(EXPECTED)
    // a clean program: every test case says so, none lacks the list
    expect(run.tests.map((t) => t.errors)).toEqual(EXPECTED.map(() => []))
    expect(run.json.warnings).toBeUndefined()
    // memcheck's own final loss records, each marked with the test case that allocated its blocks
    expect(testSites(run.json)).toEqual(TESTS_C_SITES)
    // the run's own figures are memcheck's, as without test cases
    expect(run.json.totals).toEqual({ allocations: 9, frees: 3, bytesAllocated: 828 })
    expect(run.json.leakSummary).toEqual(summary({ definite: { bytes: 192, blocks: 4 }, indirect: { bytes: 64, blocks: 2 } }))
    expect(run.test('test_indirect').leaks.map((l) => l.kind).sort()).toEqual(['definite', 'indirect', 'indirect'])
  })

  it('warns about markers out of order in the same words as the GDB backend', async () => {
    const run = await runNative([program('tests-misordered')], { backend: 'valgrind', stdio: 'pipe' })
    expect(run.json.warnings).toEqual([
      'test case "ends_never_began" ended but never began',
      'test case "second" began while "first" was still running; "first" ends here',
      'test case "second" ended as "other_name"',
    ])
    expect(run.tests.map((t) => [t.name, t.allocations])).toEqual([
      ['first', 1],
      ['second', 1],
    ])
  })

  it('tells apart blocks that test cases allocate from one stack, and splits the final loss records by test case', async () => {
    const run = await runNative([program('tests-repeated')], { backend: 'valgrind', stdio: 'pipe' })
    const one = (kinds: Partial<LeakSummary>): Omit<TestCaseSummary, 'name'> => ({ allocations: 1, frees: 0, bytesAllocated: 24, leakSummary: summary(kinds) })
    expect(counts(run.tests)).toEqual([
      { name: 'leaks_1', ...one({ definite: { bytes: 24, blocks: 1 } }) },
      { name: 'keeps_1', ...one({ reachable: { bytes: 24, blocks: 1 } }) },
      { name: 'leaks_2', ...one({ definite: { bytes: 24, blocks: 1 } }) },
      // frees keeps_1's block and keeps its own, from the same stack, in its place
      { name: 'keeps_2', ...one({ reachable: { bytes: 24, blocks: 1 } }), frees: 1 },
    ])
    // memcheck has one definite loss record of two blocks: one block from each leaking case
    expect(run.leaks.map((l) => `${l.test} ${l.kind} ${l.bytes}/${l.blocks} ${l.stack[0]!.fn}`).sort()).toEqual([
      'keeps_2 reachable 24/1 make',
      'leaks_1 definite 24/1 make',
      'leaks_2 definite 24/1 make',
    ])
  })

  it("leaves a suppressed leak out of its test case's figures, as out of the run's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-supp-'))
    try {
      const file = join(dir, 'worker.supp')
      writeFileSync(file, '{\n   worker-leak\n   Memcheck:Leak\n   fun:malloc\n   fun:leak\n   fun:worker\n}\n')
      const run = await runNative([program('tests')], { backend: 'valgrind', stdio: 'pipe', suppressions: [file] })
      // the worker's leak by this file, glibc's DTV by heapspec's defaults
      expect(run.test('test_thread_leak').leakSummary).toEqual(summary({}))
      expect(run.test('test_thread_leak').suppressed).toEqual({ bytes: 336, blocks: 2 })
      expect(run.leaks.filter((l) => l.test === 'test_thread_leak')).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("starts vgdb without the user's shell start-up files (bash reads ~/.bashrc when gdb hands it a socket)", async () => {
    const home = mkdtempSync(join(tmpdir(), 'heapspec-home-'))
    try {
      writeFileSync(join(home, '.bashrc'), 'sleep 30\n')
      const started = Date.now()
      // a shell started from no shell (SHLVL unset: CI, an IDE) counts as top level, and reads it
      const env: Record<string, string | undefined> = { ...process.env, HOME: home, SHELL: '/bin/bash' }
      delete env.SHLVL
      const run = await runNative([program('tests')], { backend: 'valgrind', stdio: 'pipe', env })
      expect(Date.now() - started).toBeLessThan(25_000)
      expect(run.tests.map((t) => t.name)).toEqual(EXPECTED.map((t) => t.name))
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  it("keeps the program's output its own", async () => {
    const run = await runNative([program('errors')], { backend: 'valgrind', stdio: 'pipe', tests: /^main$/ })
    expect(run.stdout).toBe('errors: done\n')
    expect(run.stderr).toBe('errors: stderr\n')
    // main is a test function too: everything but libstdc++'s pool, allocated before it and freed at
    // exit; its bad free counts as a free, as memcheck counts it (and preload and gdb)
    expect(run.tests.map((t) => [t.name, t.allocations, t.frees, t.bytesAllocated])).toEqual([['main', 5, 6, 50]])
    expect(run.json.errors.map((e) => e.kind)).toEqual(['mismatched-free', 'invalid-free', 'invalid-read', 'invalid-write', 'uninitialised-value', 'overlap'])
    // made inside main, the --tests function
    expect(run.json.errors.map((e) => e.test)).toEqual(Array(6).fill('main'))
    expect(run.test('main').errors.map((e) => [e.kind, e.stack[0]?.line, e.count])).toEqual([
      ['mismatched-free', 36, 1],
      ['invalid-free', 43, 1],
      ['invalid-read', 50, 1],
      ['invalid-write', 57, 1],
      ['uninitialised-value', 64, 1],
      ['overlap', 72, 1],
    ])
  })

  it('pays for gdb only when the program has markers or the tests option is set', () => {
    const markers = ['heapspec_test_begin', 'heapspec_test_end']
    expect(elfNamesSymbol(program('tests'), markers)).toBe(true)
    expect(elfNamesSymbol(program('tests-misordered'), markers)).toBe(true)
    expect(elfNamesSymbol(program('tests-nomarkers'), markers)).toBe(false)
    expect(elfNamesSymbol(program('definite'), markers)).toBe(false)
    expect(elfNamesSymbol(program('definite-stripped'), markers)).toBe(false)
    expect(elfNamesSymbol(join(ROOT, 'debugee', 'tests.c'), markers)).toBe(false)
  })

  it('pays for gdb too for a GoogleTest suite, for Node (heapspec/markers) and for the objects option', () => {
    const reason = (command: string[], options: Partial<CaptureSpec> = {}): string | undefined =>
      sessionReason({ ...normalizeOptions(command).spec, command, ...options })
    expect(reason([program('definite')])).toBeUndefined()
    expect(reason([program('tests-nomarkers')])).toBeUndefined()
    expect(reason([program('tests-nomarkers')], { tests: /^test_/ })).toBe('the tests option is set')
    expect(reason([program('tests')])).toMatch(/has heapspec.h's test-case markers$/)
    expect(reason([program('gtest-plain')])).toMatch(/gtest-plain is a GoogleTest suite$/)
    expect(reason([process.execPath, 'script.mjs'])).toMatch(/is Node\.js, whose scripts may mark test cases/)
    expect(reason([program('definite')], { objects: [/definite$/] })).toBe('the objects option is set')
  })
})

describe('per-test attribution, valgrind backend: how a run can end', () => {
  it('keeps what a test case allocated when the program dies in it', async () => {
    const run = await runNative([program('crash')], { backend: 'valgrind', stdio: 'pipe', tests: /^main$/ })
    expect(run.json.program).toMatchObject({ exitCode: null, signal: 'SIGSEGV' })
    // the test case never ended: it answers for what is lost at exit
    expect(run.tests.map((t) => [t.name, t.allocations, t.bytesAllocated, t.leakSummary])).toEqual([['main', 2, 384, summary({ definite: { bytes: 384, blocks: 2 } })]])
    expect(run.leaks.map((l) => [l.test, l.kind, l.bytes])).toEqual([
      ['main', 'definite', 256],
      ['main', 'definite', 128],
    ])
  })

  it('stops a program hung in a test case at the timeout, attributes its leak, and leaves no process behind', async () => {
    const marker = `heapspec-vgdb-timeout-${process.pid}`
    const started = Date.now()
    const { result, seen, alive } = await survivors(marker, () => runNative([program('hang'), marker], { backend: 'valgrind', stdio: 'pipe', tests: /^main$/, timeout: 3 }))
    // about 7 s on an idle machine (valgrind's start, the 3 s, memcheck's report); the hang itself
    // never ends, so any bound well short of the test's own timeout proves the stop
    expect(Date.now() - started).toBeLessThan(3_000 + 30_000)
    expect(result).not.toBeInstanceOf(Error)
    const run = result as Awaited<ReturnType<typeof runNative>>
    expect(run.json.program).toMatchObject({ signal: 'SIGTERM', timedOut: true })
    expect(run.tests.map((t) => [t.name, t.allocations])).toEqual([['main', 1]])
    expect(run.leaks.map((l) => [l.test, l.kind, l.bytes, l.stack[0]?.fn])).toEqual([['main', 'definite', 32, 'leak_one']])
    // at the stop on exit a register still held the block (reachable); the final check found it
    // lost: it is in a final loss record, so nothing was suppressed
    expect(run.json.suppressed).toEqual({ bytes: 0, blocks: 0 })
    // valgrind, gdb and vgdb were all there, and are all gone
    expect(seen.some((l) => l.includes('memcheck') || l.includes('valgrind'))).toBe(true)
    expect(seen.some((l) => l.includes('heapspec_vgdb.py'))).toBe(true)
    expect(seen.some((l) => l.includes('vgdb --wait'))).toBe(true)
    expect(alive).toEqual([])
  })

  it('stops at once when aborted, with an error and no process left', async () => {
    const marker = `heapspec-vgdb-abort-${process.pid}`
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 2_000)
    const { result, seen, alive } = await survivors(marker, () =>
      runNative(['debugee/build/hang', marker], { backend: 'valgrind', cwd: ROOT, stdio: 'pipe', tests: /^main$/, signal: controller.signal }),
    )
    expect(result).toBeInstanceOf(CaptureFailedError)
    expect((result as Error).message).toBe(`heapspec: the valgrind capture of debugee/build/hang ${marker} was interrupted.`)
    expect(seen.some((l) => l.includes('heapspec_vgdb.py'))).toBe(true)
    expect(alive).toEqual([])
  })

  it('says in one line that gdb is missing, when the program has markers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-no-gdb-'))
    try {
      symlinkSync('/usr/bin/valgrind', join(dir, 'valgrind'))
      const error = await rejection(runNative(['debugee/build/tests'], { backend: 'valgrind', cwd: ROOT, env: { ...process.env, PATH: dir } }))
      expect(error).toBeInstanceOf(CannotStartError)
      expect(error.message).toBe(
        "heapspec: gdb is not installed (looked on PATH); the valgrind backend needs it to attribute leaks to test cases, as debugee/build/tests has heapspec.h's test-case markers. Install it (apt-get install gdb).",
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('says in one line when gdb cannot attach, and leaves valgrind waiting for nobody', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-bad-gdb-'))
    const marker = `heapspec-vgdb-nogdb-${process.pid}`
    try {
      writeFileSync(join(dir, 'gdb'), '#!/bin/sh\necho "Python scripting is not supported in this copy of GDB." >&2\nexit 1\n')
      chmodSync(join(dir, 'gdb'), 0o755)
      const { result, alive } = await survivors(marker, () =>
        runNative(['debugee/build/hang', marker], { backend: 'valgrind', cwd: ROOT, tests: /^main$/, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } }),
      )
      expect(result).toBeInstanceOf(CannotStartError)
      expect((result as Error).message).toBe(
        `heapspec: gdb could not attach to memcheck's gdbserver to follow the test cases of debugee/build/hang ${marker} (Python scripting is not supported in this copy of GDB). ` +
          "Check that gdb runs Python (gdb -batch -ex 'python print(1)'); run with HEAPSPEC_DEBUG=1 to see gdb's transcript.",
      )
      expect(alive).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

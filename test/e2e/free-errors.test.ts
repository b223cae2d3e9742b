import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import { program } from '../support/debugee.js'
import { memcheck } from '../support/memcheck.js'
import { errorShape, memcheckErrors } from '../support/memcheck-errors.js'

// The frees an allocator interposer can judge (debugee/free-errors.c, debugee/free-mismatch.cpp),
// under the preload and gdb backends beside plain memcheck on the same binary: memcheck's error
// list, error by error, is the reference; the test cases are the programs' own markers (memcheck
// knows none, so its errors get them from the order the programs make them in).

const FREE_ERRORS_TESTS = ['double_free', 'stack_free', 'static_free', 'interior_free', 'realloc_freed', 'realloc_freed', 'threaded', null]
const MISMATCH_TESTS = ['malloc_delete', 'malloc_delete_array', 'new_free', 'new_delete_array', 'array_free', 'array_delete', 'new_realloc']

describe('the preload backend sending every event (memdump.txt)', () => {
  it('finds the same errors, with the same figures, as with counts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-memdump-'))
    for (const [name, tests] of [['free-errors', FREE_ERRORS_TESTS], ['free-mismatch', MISMATCH_TESTS]] as const) {
      const counted = await runNative([program(name)], { backend: 'preload' })
      const all = await runNative([program(name)], { backend: 'preload', memdump: join(dir, `${name}.txt`) })
      expect(all.json.errors.map(errorShape)).toEqual(counted.json.errors.map(errorShape))
      expect(all.json.errors.map((e) => e.test)).toEqual(tests)
      expect(all.json.totals).toEqual(counted.json.totals)
    }
  })
})

// memcheck's totals count every free and realloc call, the bad ones too; the valgrind backend reads
// them from memcheck's xtree report, which counts blocks: it read 7 allocs and 7 frees here.
describe('the valgrind backend counts the bad frees as memcheck does', () => {
  it('free-errors: memcheck\'s allocations and frees, run and test case by test case as on preload; the bad realloc\'s size, in no output, said to be left out', async () => {
    const command = [program('free-errors')]
    const [figures, run, preload] = await Promise.all([memcheck(command), runNative(command, { backend: 'valgrind', timeout: 120 }), runNative(command, { backend: 'preload' })])
    expect(figures.totals).toEqual({ allocations: 8, frees: 15, bytesAllocated: 444 })
    expect(run.json.totals).toEqual({ allocations: 8, frees: 15, bytesAllocated: 444 - 48 })
    expect(run.json.warnings).toEqual([expect.stringMatching(/^memcheck counted 1 realloc call of a pointer that was no live block .* bytesAllocated leaves it out$/)])
    const counts = (tests: { name: string; allocations: number; frees: number }[]): unknown => tests.map((t) => [t.name, t.allocations, t.frees])
    expect(counts(run.json.tests)).toEqual(counts(preload.json.tests))
    expect(counts(run.json.tests)).toEqual([['double_free', 1, 2], ['stack_free', 0, 1], ['static_free', 0, 1], ['interior_free', 1, 2], ['realloc_freed', 3, 4], ['threaded', 2, 2]])
  }, 120_000)
})

describe.each(['preload', 'gdb'] as const)('the %s backend beside memcheck', (backend) => {
  it('free-errors: 8 invalid frees (double, stack, static, interior, realloc of a freed block to 48 and to 0 bytes, on a second thread, outside any test case), each with memcheck\'s story; the program runs to its end as under memcheck', async () => {
    const command = [program('free-errors')]
    const [reference, figures] = await Promise.all([memcheckErrors(command), memcheck(command)])
    const run = await runNative(command, { backend, timeout: 120 })
    const expected = reference.errors.map((e, i) => errorShape({ ...e, test: FREE_ERRORS_TESTS[i]! }))
    expect(run.json.errors.map(errorShape)).toEqual(expected)
    expect(expected).toHaveLength(8)
    // memcheck's own figures: every free() call counts, a bad realloc as an allocation and a free, one to 0 bytes as a free
    expect(run.json.totals).toEqual(figures.totals)
    expect(run.json.totals).toEqual({ allocations: 8, frees: 15, bytesAllocated: 444 })
    expect(run.json.inUseAtExit).toEqual({ bytes: 0, blocks: 0 })
    expect(run.json.leakSummary).toEqual(figures.leakSummary)
    expect({ exitCode: run.json.program.exitCode, signal: run.json.program.signal, stdout: run.stdout, stderr: run.stderr }).toEqual({
      exitCode: reference.exitCode,
      signal: null,
      stdout: reference.stdout,
      stderr: reference.stderr,
    })
    expect(run.stdout).toBe('free-errors: done\n')
  })

  it('free-mismatch: 7 mismatched frees (malloc/delete, malloc/delete[], new/free, new/delete[], new[]/free, new[]/delete, new/realloc), none for matched pairs; the program behaves as natively', async () => {
    const command = [program('free-mismatch')]
    const [reference, figures, native] = await Promise.all([memcheckErrors(command), memcheck(command), execa(command[0]!, [], { reject: false, stripFinalNewline: false })])
    const run = await runNative(command, { backend, timeout: 120 })
    const expected = reference.errors.map((e, i) => errorShape({ ...e, test: MISMATCH_TESTS[i]! }))
    expect(run.json.errors.map(errorShape)).toEqual(expected)
    expect(expected).toHaveLength(7)
    expect(run.json.totals).toEqual(figures.totals)
    expect(run.json.inUseAtExit).toEqual({ bytes: 0, blocks: 0 })
    expect({ exitCode: run.json.program.exitCode, stdout: run.stdout, stderr: run.stderr }).toEqual({
      exitCode: native.exitCode,
      stdout: String(native.stdout),
      stderr: String(native.stderr),
    })
    expect(run.stdout).toBe('free-mismatch: done\n')
  })

  it.each([
    ['cxx', []],
    ['verdicts-cxx', []],
    ['threads', []],
    ['libc', []],
    ['realloc', []],
    ['aligned', []],
    ['gtest-listener', []],
    ['field/stale-threads', []],
  ] as const)('%s: memcheck finds no error in it, and neither does heapspec (frees of blocks made before or inside libc are no errors)', async (name, args) => {
    const command = [program(name), ...args]
    const [reference, run] = await Promise.all([memcheckErrors(command), runNative(command, { backend, timeout: 120 })])
    expect(reference.errors.filter((e) => !e.kind.startsWith('leak'))).toEqual([])
    expect(run.json.errors).toEqual([])
  })

  it('a block\'s operator new is its suppressions\' first frame, as memcheck\'s (debugee/cxx: _Znam for new int[10], not _Znwm)', async () => {
    const generated = await runNative([program('cxx')], { backend, genSuppressions: true })
    // memcheck's own suppressions for these blocks: test/fixtures/valgrind/cxx.xml
    expect(generated.json.leaks.map((l) => [l.bytes, l.suppression?.split('\n')[4]?.trim()])).toEqual([
      [64, 'fun:_ZnwmSt11align_val_t'],
      [48, 'fun:_Znwm'],
      [40, 'fun:_Znam'],
    ])
    const file = join(mkdtempSync(join(tmpdir(), 'heapspec-supp-')), 'new.supp')
    writeFileSync(file, '{\n  arrays\n  Memcheck:Leak\n  fun:_Znam\n  ...\n}\n{\n  not-an-array\n  Memcheck:Leak\n  fun:_Znwm\n  fun:make_ints*\n}\n')
    const run = await runNative([program('cxx')], { backend, suppressions: [file] })
    expect(run.json.leaks.map((l) => l.bytes)).toEqual([64, 48])
    expect(run.json.suppressed).toEqual({ bytes: 40, blocks: 1 })
  })

  it('names a C++ program\'s main (C linkage) main, as memcheck does, so its suppressions match on every backend', async () => {
    // gdb names a C++ program's functions with their parameters, and called main `main()`: a
    // suppression generated under gdb said fun:main() and matched nothing elsewhere
    const generated = await runNative([program('cxx')], { backend, genSuppressions: true })
    expect(generated.json.leaks.map((l) => l.stack.map((f) => f.fn))).toEqual([
      ['make_aligned()', 'main'],
      ['make_record()', 'main'],
      ['make_ints()', 'main'],
    ])
    expect(generated.json.leaks.map((l) => l.suppression?.split('\n')[6]?.trim())).toEqual(['fun:main', 'fun:main', 'fun:main'])
    const file = join(mkdtempSync(join(tmpdir(), 'heapspec-supp-')), 'main.supp')
    writeFileSync(file, '{\n  from-main\n  Memcheck:Leak\n  fun:_Znwm\n  fun:make_record*\n  fun:main\n}\n')
    const run = await runNative([program('cxx')], { backend, suppressions: [file] })
    expect(run.json.suppressed).toEqual({ bytes: 48, blocks: 1 })
  })

  it('free-across: a block freed on one thread and again on another has memcheck\'s story, the first free\'s stack on its own thread, on every one of 5 runs', async () => {
    const command = [program('free-across')]
    const [reference, figures] = await Promise.all([memcheckErrors(command), memcheck(command)])
    const expected = reference.errors.map((e, i) => errorShape({ ...e, test: ['freed_elsewhere', 'freed_here'][i]! }))
    expect(expected).toHaveLength(2)
    for (let i = 0; i < 5; i++) {
      const run = await runNative(command, { backend, timeout: 120 })
      expect({ run: i, errors: run.json.errors.map(errorShape) }).toEqual({ run: i, errors: expected })
      expect(run.json.totals).toEqual(figures.totals)
      expect(run.json.leakSummary).toEqual(figures.leakSummary)
      expect({ exitCode: run.json.program.exitCode, stdout: run.stdout }).toEqual({ exitCode: reference.exitCode, stdout: 'free-across: done\n' })
    }
  })

  it('a second thread\'s double free is reported the same way on every one of 20 runs', async () => {
    const shapes = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const run = await runNative([program('free-errors')], { backend, timeout: 120 })
      shapes.add(JSON.stringify({ errors: run.json.errors.map(errorShape), totals: run.json.totals, exitCode: run.json.program.exitCode }))
    }
    expect(shapes.size).toBe(1)
    const [only] = [...shapes].map((s) => JSON.parse(s) as { errors: { test: string | null; at: string }[] })
    expect(only!.errors[6]).toMatchObject({ test: 'threaded', at: 'debugee/free-errors.c:46' })
  })
})

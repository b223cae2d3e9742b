import { execa } from 'execa'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import { BadOptionError } from '../../src/errors.js'
import { program, ROOT } from '../support/debugee.js'

// `--tests REGEX` is a JavaScript regular expression on every backend: heapspec matches the
// program's function names itself (flags included) and hands the backends the names.

const CLI = join(ROOT, 'dist', 'src', 'cli.js')

const patterns: [string, RegExp | string, string[]][] = [
  ['alternation', 'test_clean|test_keeps', ['test_clean', 'test_keeps']],
  ['groups, a named one included', '(?<n>^test_)(leaks|indirect)', ['test_leaks_two', 'test_indirect']],
  ['a flag', /^TEST_(CLEAN|FREES_KEPT)$/i, ['test_clean', 'test_frees_kept']],
  ['the g flag, which keeps no state between names', /test_k/g, ['test_keeps']],
]

describe.each(['gdb', 'valgrind'] as const)('the tests option, %s backend', (backend) => {
  it.each(patterns)('%s', async (_what, tests, names) => {
    const run = await runNative([program('tests-nomarkers')], { backend, tests, timeout: 120 })
    expect(run.tests.map((t) => t.name)).toEqual(names)
    // gdb's inferior calls fail on this machine's CPU (AMX), another change fixes that: not this test's concern
    expect(run.json.warnings?.filter((w) => !/ failed: Couldn't write extended state status/.test(w)) ?? []).toEqual([])
  })
})

describe.each(['preload', 'gdb', 'valgrind'] as const)('one tests name defined more than once, %s backend', (backend) => {
  // built without -g too, as a release build of a suite is: its functions then have symbols only
  it.each(['tests-static', 'tests-static-nodebug'])('static in two files is two test cases, each answering for its own definition (%s)', async (name) => {
    const run = await runNative([program(name)], { backend, tests: /^test_/, timeout: 120 })
    expect(run.json.program).toMatchObject({ exitCode: 0, signal: null })
    // tests-static.c's test_local loses 16 bytes, tests-static-b.c's 32; the global test_shared frees its 8
    expect(run.tests.map((t) => [t.name, t.allocations, t.frees, t.leakSummary.definite])).toEqual([
      ['test_local', 1, 0, { bytes: 16, blocks: 1 }],
      ['test_local', 1, 0, { bytes: 32, blocks: 1 }],
      ['test_shared', 1, 1, { bytes: 0, blocks: 0 }],
    ])
    expect(run.leaks.map((l) => [l.test, l.kind, l.bytes])).toEqual([
      ['test_local', 'definite', 32],
      ['test_local', 'definite', 16],
    ])
    // each leak from its own definition (the debug build names the file of each)
    if (name === 'tests-static') expect(run.leaks.map((l) => l.stack[0]?.file?.replace(/.*\//, ''))).toEqual(['tests-static-b.c', 'tests-static.c'])
  })

  it('and one overloaded in two files is a test case for each overload, as an ABI-tagged one, one in an anonymous namespace and a template instance are', async () => {
    const run = await runNative([program('tests-overloads')], { backend, tests: /(^|::)test_/, timeout: 120 })
    expect(run.json.program).toMatchObject({ exitCode: 0, signal: null })
    // test_ov(int) loses 10 bytes, test_ov(double) 20, tests-overloads-b.cpp's test_ov(const char *)
    // 30, its test_tagged (a std::string's return: the ABI tag in its name) 40 and its test_hidden (an
    // anonymous namespace's) 50; then a template's two
    expect(run.tests.map((t) => [t.name, t.allocations, t.leakSummary.definite])).toEqual([
      ['test_ov', 1, { bytes: 10, blocks: 1 }],
      ['test_ov', 1, { bytes: 20, blocks: 1 }],
      ['test_ov', 1, { bytes: 30, blocks: 1 }],
      ['test_tagged[abi:cxx11]', 1, { bytes: 40, blocks: 1 }],
      ['(anonymous namespace)::test_hidden', 1, { bytes: 50, blocks: 1 }],
      // a function template, named without the return type its demangled name starts with
      ['test_tpl<int>', 1, { bytes: 20, blocks: 1 }],
      ['test_tpl<double>', 1, { bytes: 40, blocks: 1 }],
    ])
  })
})

describe.each(['preload', 'gdb', 'valgrind'] as const)('an empty tests function right before the next one (-O1: a single ret), %s backend', (backend) => {
  it('leaves the next one to run, as its own test case', async () => {
    const command = [program('field/tests-empty')]
    const native = await execa(command[0]!, [], { reject: false })
    const run = await runNative(command, { backend, tests: '^test_' })
    // under valgrind, gdb took the stop at test_leaks for test_empty's breakpoint a byte before and
    // set the pc back onto its ret: test_leaks never ran
    expect(run.stdout).toBe(`${native.stdout}\n`)
    expect(run.json.program.exitCode).toBe(0)
    expect(run.json.leakSummary.definite).toEqual({ bytes: 24, blocks: 1 })
    expect(run.json.tests.find((t) => t.name === 'test_leaks')).toMatchObject({ allocations: 2, leakSummary: { definite: { bytes: 24, blocks: 1 } } }) // and stdout's buffer
  })
})

// debugee/field/tests-throw: exceptions leave --tests functions, are caught inside one, rethrown.
// preload replaces a test function's return address, which the unwinder could not read past: the
// program died in std::terminate (SIGABRT) where natively it catches every one.
describe.each(['preload', 'gdb', 'valgrind'] as const)('tests functions that a C++ exception leaves, %s backend', (backend) => {
  it('the program catches what it catches natively, and each test case answers for its own leak', async () => {
    const command = [program('field/tests-throw')]
    const native = await execa(command[0]!, [], { reject: false })
    expect(native.stdout).toBe('caught: from test_throws\ncaught inside: inside test_catches\ncaught: from test_rethrows\ntests-throw: done')
    const run = await runNative(command, { backend, tests: '^test_' })
    expect(run.stdout).toBe(`${native.stdout}\n`)
    expect(run.json.program).toMatchObject({ exitCode: 0, signal: null })
    expect(run.json.warnings ?? []).toEqual([])
    expect(run.json.leakSummary.definite).toEqual({ bytes: 128, blocks: 4 })
    expect(run.json.tests.map((t) => [t.name, t.leakSummary.definite])).toEqual([
      ['test_throws', { bytes: 24, blocks: 1 }],
      ['test_catches', { bytes: 40, blocks: 1 }],
      ['test_rethrows', { bytes: 56, blocks: 1 }],
      ['test_after', { bytes: 8, blocks: 1 }],
    ])
  })
})

// debugee/field/tests-longjmp: a longjmp out of a --tests function. preload saw no return, so the
// code after the longjmp (a function called from the same depth, outside any test case) was the
// test case's: 174 bytes where it answers for 75, and a warning when the next test began.
describe.each(['preload', 'gdb', 'valgrind'] as const)('a tests function left by longjmp, %s backend', (backend) => {
  it('ends there: what runs after it is not its', async () => {
    const command = [program('field/tests-longjmp')]
    const run = await runNative(command, { backend, tests: '^test_' })
    expect(run.stdout).toBe('tests-longjmp: done\n')
    expect(run.json.program).toMatchObject({ exitCode: 0, signal: null })
    expect(run.json.warnings ?? []).toEqual([])
    expect(run.json.leakSummary.definite).toEqual({ bytes: 182, blocks: 4 })
    expect(run.json.tests.map((t) => [t.name, t.allocations, t.leakSummary.definite])).toEqual([
      ['test_longjmp', 2, { bytes: 75, blocks: 2 }],
      ['test_after', 1, { bytes: 8, blocks: 1 }],
    ])
  })
})

describe('a tests pattern that matches no function', () => {
  it('is refused before anything runs, naming some of the program’s functions', async () => {
    const refused = runNative([program('tests-nomarkers')], { backend: 'gdb', tests: /^nope_/ })
    await expect(refused).rejects.toBeInstanceOf(BadOptionError)
    await expect(refused).rejects.toThrow(
      'heapspec: the `tests` pattern /^nope_/ matches no function of ' + program('tests-nomarkers') + ' (its functions include leak, main, node_new, test_clean, test_frees_kept, test_indirect, test_keeps, test_leaks_two, ...).',
    )
  })

  it('makes the CLI exit 2 with one line', async () => {
    const result = await execa('node', [CLI, 'run', '--tests', 'alpha_|beta_', '--', program('tests-nomarkers')], { reject: false, cwd: ROOT })
    expect(result.exitCode).toBe(2)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toContain('the `tests` pattern /alpha_|beta_/ matches no function of ' + program('tests-nomarkers') + ' (its functions include leak, main,')
  })
})

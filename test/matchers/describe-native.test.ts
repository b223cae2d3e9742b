import { stripVTControlCharacters } from 'node:util'
import { describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { describeNative, type DescribeNativeOptions } from '../../src/describe-native.js'
import { program } from '../support/debugee.js'

interface Outcome {
  name: string
  error?: string
}

/** Registers through describeNative with a recording framework API, then runs the hooks and tests as a runner would. */
async function runDescribed(command: string[], options?: DescribeNativeOptions): Promise<{ title: string; outcomes: Outcome[]; hooks: number }> {
  let title = ''
  const tests: { name: string; fn: () => void | Promise<void> }[] = []
  const hooks: (() => void | Promise<void>)[] = []
  describeNative(command, options, {
    describe: (name, fn) => {
      title = name
      fn()
    },
    it: (name, fn) => tests.push({ name, fn }),
    beforeAll: (fn) => hooks.push(fn),
    expect,
  })
  for (const hook of hooks) await hook()
  const outcomes: Outcome[] = []
  for (const t of tests) {
    try {
      await t.fn()
      outcomes.push({ name: t.name })
    } catch (error) {
      outcomes.push({ name: t.name, error: stripVTControlCharacters((error as Error).message) })
    }
  }
  return { title, outcomes, hooks: hooks.length }
}

const failed = (outcomes: Outcome[]): string[] => outcomes.filter((o) => o.error).map((o) => o.name)

describe('describeNative', () => {
  it('finds the test cases by running the program at collection time, one test each, failing the leaky ones', async () => {
    const { title, outcomes, hooks } = await runDescribed([program('tests')], { backend: 'gdb' })
    expect(title).toBe('tests')
    expect(hooks).toBe(0)
    expect(outcomes.map((o) => o.name)).toEqual([
      'test_clean',
      'test_leaks_two',
      'test_indirect',
      'test_thread_leak',
      'test_keeps',
      'test_frees_kept',
      '(outside any test case): exits cleanly and leaks nothing',
    ])
    expect(failed(outcomes)).toEqual(['test_leaks_two', 'test_indirect', 'test_thread_leak'])
    // Line numbers are debugee/tests.c's business; the shape of the message is ours.
    expect(outcomes.find((o) => o.name === 'test_indirect')!.error!.replace(/tests\.c:\d+/g, 'tests.c:N')).toMatchInlineSnapshot(`
      "expect(run.test("test_indirect")).toHaveNoLeaks()

      Expected no leaks, found 3 leaks (96 B) in test "test_indirect":
        - definite: 32 B in 1 block, allocated at node_new (debugee/tests.c:N) <- test_indirect (debugee/tests.c:N) <- main (debugee/tests.c:N)
        - indirect: 32 B in 1 block, allocated at node_new (debugee/tests.c:N) <- test_indirect (debugee/tests.c:N) <- main (debugee/tests.c:N)
        - indirect: 32 B in 1 block, allocated at node_new (debugee/tests.c:N) <- test_indirect (debugee/tests.c:N) <- main (debugee/tests.c:N)"
    `)
  })

  it('with `cases`, runs the program in beforeAll and fails on test cases the list misses', async () => {
    const { outcomes, hooks } = await runDescribed([program('tests')], { cases: ['test_clean', 'test_keeps', 'test_frees_kept'], name: 'clean ones' })
    expect(hooks).toBe(1)
    expect(outcomes.map((o) => o.name)).toEqual(['test_clean', 'test_keeps', 'test_frees_kept', '(outside any test case): exits cleanly and leaks nothing'])
    expect(outcomes.slice(0, 3).every((o) => !o.error)).toBe(true)
    expect(outcomes[3]!.error).toMatch(/ran test cases missing from `cases`: "test_leaks_two", "test_indirect", "test_thread_leak"\./)
  })

  it('names a listed test case the program did not run', async () => {
    const { outcomes } = await runDescribed([program('tests')], { cases: ['test_nothing'] })
    expect(outcomes[0]!.error).toMatch(/no test case "test_nothing" in this run\. Known test cases: "test_clean"/)
  })

  it('fails one test, with the reason, when the program has no test cases or cannot start', async () => {
    const none = await runDescribed([program('definite')])
    expect(none.outcomes.map((o) => o.name)).toEqual(['(outside any test case): exits cleanly and leaks nothing'])
    expect(none.outcomes[0]!.error).toMatch(/ran no test case\. Bracket each with heapspec_test_begin/)

    const missing = await runDescribed([program('no-such-program')])
    expect(missing.outcomes).toHaveLength(1)
    expect(missing.outcomes[0]!.name).toBe(`runs ${program('no-such-program')}`)
    expect(missing.outcomes[0]!.error).toMatch(/^heapspec: cannot run .*no-such-program/)
  })

  it('fails the test cases that made memory errors, and the one outside them for errors made outside any', async () => {
    const { outcomes } = await runDescribed([program('errors-tests')], { backend: 'valgrind', cases: ['mismatched', 'double_free', 'read_past_end', 'write_past_end', 'use_after_free', 'uninitialised', 'overlap', 'thread_write', 'clean', 'repeat_1', 'repeat_2'] })
    expect(failed(outcomes)).toEqual(['mismatched', 'double_free', 'read_past_end', 'write_past_end', 'use_after_free', 'uninitialised', 'overlap', 'thread_write', 'repeat_1', 'repeat_2', '(outside any test case): exits cleanly and leaks nothing'])
    expect(outcomes.find((o) => o.name.startsWith('(outside'))!.error!.replace(/0x[0-9a-f]+/, '0x...')).toBe(
      [
        'expect(run.test("(outside any test case)")).toHaveNoMemoryErrors()',
        '',
        'Expected no memory errors, found 1 error in test "(outside any test case)":',
        '  - invalid-read: Invalid read of size 1 at read_before_tests() (debugee/errors-tests.cpp:39) <- main (debugee/errors-tests.cpp:128)',
        "      Address 0x... is 0 bytes after a block of size 4 alloc'd at read_before_tests() (debugee/errors-tests.cpp:38) <- main (debugee/errors-tests.cpp:128)",
      ].join('\n'),
    )
  })

  it('rejects bad options before running anything', async () => {
    await expect(runDescribed([program('tests')], { timeout: -1 })).rejects.toThrow('Expected the `timeout` option to be a positive number of seconds, got `-1` (number).')
    await expect(runDescribed([program('tests')], { cases: 'test_clean' as never })).rejects.toThrow('Expected the `cases` option to be an array of test case names, got `test_clean` (string).')
    await expect(runDescribed([program('tests')], { signal: new AbortController().signal })).rejects.toThrow(/needs the `cases` option/)
  })
})

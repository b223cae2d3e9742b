import { basename } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import type { MemoryError, RunJson } from '../../src/model/types.js'
import { program } from '../support/debugee.js'
import { memcheckErrors, type MemcheckError } from '../support/memcheck.js'

// Memory errors tied to the test case that made them, under the Valgrind backend: real valgrind
// and gdb on debugee/errors-tests.cpp, beside plain memcheck's own error list on the same binary.

const COMMAND = [program('errors-tests')]

/** Where each of the program's errors is made, and the test case it is made in (null: outside any). */
const MADE_IN: [string, string, string | null][] = [
  ['invalid-read', 'errors-tests.cpp:39', null],
  ['mismatched-free', 'errors-tests.cpp:46', 'mismatched'],
  ['invalid-free', 'errors-tests.cpp:53', 'double_free'],
  ['invalid-read', 'errors-tests.cpp:59', 'read_past_end'],
  ['invalid-write', 'errors-tests.cpp:66', 'write_past_end'],
  ['invalid-read', 'errors-tests.cpp:74', 'use_after_free'],
  ['uninitialised-value', 'errors-tests.cpp:80', 'uninitialised'],
  ['overlap', 'errors-tests.cpp:88', 'overlap'],
  ['invalid-write', 'errors-tests.cpp:94', 'thread_write'],
  ['invalid-read', 'errors-tests.cpp:115', 'repeat_1'],
]

/** An error as plain memcheck's text report tells it, for the comparison. */
function asMemcheckTells(error: MemoryError): Omit<MemcheckError, 'count'> & { count: number | undefined } {
  const first = error.stack[0]
  return {
    what: error.what ?? '',
    at: first?.file ? `${basename(first.file)}:${first.line}` : '?',
    aux: (error.auxStacks ?? []).map((a) => a.what),
    count: error.count,
  }
}

/** The test cases' own errors: kind, line and count. */
function perTest(run: RunJson): Record<string, string[]> {
  return Object.fromEntries(run.tests.map((t) => [t.name, (t.errors ?? []).map((e) => `${e.kind} ${basename(e.stack[0]?.file ?? '?')}:${e.stack[0]?.line} x${e.count}`)]))
}

const PER_TEST: Record<string, string[]> = {
  mismatched: ['mismatched-free errors-tests.cpp:46 x1'],
  double_free: ['invalid-free errors-tests.cpp:53 x1'],
  read_past_end: ['invalid-read errors-tests.cpp:59 x1'],
  write_past_end: ['invalid-write errors-tests.cpp:66 x1'],
  use_after_free: ['invalid-read errors-tests.cpp:74 x1'],
  uninitialised: ['uninitialised-value errors-tests.cpp:80 x1'],
  overlap: ['overlap errors-tests.cpp:88 x1'],
  thread_write: ['invalid-write errors-tests.cpp:94 x1'],
  clean: [],
  // memcheck shows the read once (repeat_1 made it first) and counts repeat_2's
  repeat_1: ['invalid-read errors-tests.cpp:115 x1'],
  repeat_2: ['invalid-read errors-tests.cpp:115 x1'],
}

describe('memory errors under the valgrind backend, beside plain memcheck', () => {
  let reference: MemcheckError[]
  beforeAll(async () => {
    reference = await memcheckErrors(COMMAND)
  })

  it('plain memcheck finds the ten distinct errors the program makes, the last one twice', () => {
    expect(reference.map((e) => e.at)).toEqual(MADE_IN.map(([, at]) => at))
    expect(reference.map((e) => e.count)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2])
    expect(reference[3]!.aux).toEqual([expect.stringMatching(/^Address 0x[0-9a-f]+ is 8 bytes after a block of size 32 alloc'd$/)])
  })

  // 20 captures under memcheck and gdb: a loaded machine takes minutes
  it('each error is memcheck\'s (words, first user line, aux story, count), in the test case that made it, on every one of 20 runs', { timeout: 900_000 }, async () => {
    const normal = (text: string): string => text.replace(/0x[0-9a-f]+/g, '0x...')
    const expected = reference.map((e) => ({ ...e, aux: e.aux.map(normal) }))
    for (let i = 0; i < 20; i++) {
      const run = await runNative(COMMAND, { backend: 'valgrind', stdio: 'pipe' })
      const { json } = run
      expect({ run: i, errors: json.errors.map((e) => ({ ...asMemcheckTells(e), aux: asMemcheckTells(e).aux.map(normal) })) }).toEqual({ run: i, errors: expected })
      expect({ run: i, made: json.errors.map((e) => [e.kind, asMemcheckTells(e).at, e.test]) }).toEqual({ run: i, made: MADE_IN })
      expect({ run: i, tests: perTest(json) }).toEqual({ run: i, tests: PER_TEST })
      expect(json.warnings).toBeUndefined()
      expect(run.stdout).toBe('errors-tests: done\n')
      expect(run.stderr).toBe('errors-tests: stderr\n')
      expect(json.program.exitCode).toBe(0)
      // the aux stacks: where the freed block was freed, then where it was allocated
      const useAfterFree = json.tests.find((t) => t.name === 'use_after_free')!.errors![0]!
      expect(useAfterFree.auxStacks!.map((a) => `${a.what.replace(/0x[0-9a-f]+/, '0x...')} @ ${a.stack[0]?.fn} ${basename(a.stack[0]?.file ?? '?')}:${a.stack[0]?.line}`)).toEqual([
        "Address 0x... is 4 bytes inside a block of size 24 free'd @ use_after_free() errors-tests.cpp:73",
        "Block was alloc'd at @ use_after_free() errors-tests.cpp:72",
      ])
    }
  })

  it('without test cases to follow (debugee/errors), every error is outside any test case, with its count', async () => {
    const run = await runNative([program('errors')], { backend: 'valgrind', stdio: 'pipe' })
    expect(run.json.errors.map((e) => [e.kind, e.test, e.count])).toEqual([
      ['mismatched-free', null, 1],
      ['invalid-free', null, 1],
      ['invalid-read', null, 1],
      ['invalid-write', null, 1],
      ['uninitialised-value', null, 1],
      ['overlap', null, 1],
    ])
    expect(run.json.tests).toEqual([])
  })
})

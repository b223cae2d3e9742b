import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { toHaveNoLeaks } from '../../matchers/to-have-no-leaks.js'
import { runNative, type HeapRun } from '../../src/index.js'
import type { LeakSummary, RunJson } from '../../src/model/types.js'
import { program, ROOT } from '../support/debugee.js'
import { summary } from '../support/test-cases.js'

// Test cases written the natural way (debugee/verdicts.c and verdicts.cpp), under every backend:
// a leak still held by main's local when the test case ends is that test case's (it is lost by
// exit), and a test case that starts and joins threads and frees everything leaks nothing of any
// kind, glibc's thread bookkeeping being suppressed by default, and counted as suppressed.

const BACKENDS = ['preload', 'gdb', 'valgrind'] as const
const none = { bytes: 0, blocks: 0 }

/** Per test case: its leak summary, suppressed amount, and loss records as `kind bytes/blocks fn:line`. */
function verdicts(run: RunJson): Record<string, { leakSummary: LeakSummary; suppressed: unknown; leaks: string[] }> {
  return Object.fromEntries(
    run.tests.map((t) => [
      t.name,
      {
        leakSummary: t.leakSummary,
        suppressed: t.suppressed,
        // gdb names a C++ main "main()" (see preload.test.ts); memcheck and the symbolizers "main"
        leaks: (t.leaks ?? []).map((l) => `${l.kind} ${l.bytes}/${l.blocks} ${l.stack[0]?.fn?.replace(/^main\(\)$/, 'main')}:${l.stack[0]?.line}`).sort(),
      },
    ]),
  )
}

/** The failure message of toHaveNoLeaks on a test case's slice. */
function failure(run: HeapRun, name: string): string {
  return toHaveNoLeaks.call({ isNot: false } as never, run.test(name)).message()
}

const C_VERDICTS = {
  scope_leak: { leakSummary: summary({ definite: { bytes: 15, blocks: 1 } }), suppressed: none, leaks: ['definite 15/1 strdup:42'] },
  spawn_join: { leakSummary: summary({}), suppressed: { bytes: 272, blocks: 1 }, leaks: [] },
  user_suppressed: { leakSummary: summary({ definite: { bytes: 40, blocks: 1 } }), suppressed: none, leaks: ['definite 40/1 known_leak:28'] },
  clean: { leakSummary: summary({}), suppressed: none, leaks: [] },
}

describe.each(BACKENDS)('test cases written the natural way, %s backend', (backend) => {
  it('C markers in main: the scope-held leak is the test case\'s; the thread test case has none of any kind, its DTV suppressed', async () => {
    const run = await runNative([program('verdicts')], { backend, timeout: 120 })
    expect(verdicts(run.json)).toEqual(C_VERDICTS)
    // the run's own figures stay memcheck's at exit
    expect(run.json.leakSummary).toEqual(summary({ definite: { bytes: 55, blocks: 2 } }))
    expect(run.json.suppressed).toEqual(none)
    expect(run.test('scope_leak').leaks).toHaveLength(1)
    expect(() => expect(run.test('spawn_join')).toHaveNoLeaks()).not.toThrow()
    expect(() => expect(run.test('spawn_join')).toHaveNoLeaks({ kinds: ['definite', 'indirect', 'possible', 'reachable'] })).not.toThrow()
    const message = failure(run, 'scope_leak')
    expect(message).toContain('Expected no leaks, found 1 leak (15 B) in test "scope_leak":')
    expect(message).toMatch(/- definite: 15 B in 1 block, allocated at main \(debugee\/verdicts\.c:38\)/)
    expect(message).not.toContain('no allocation stacks')
  })

  it('C++ TestCaseScope in main around new Node{...}: definite and indirect, in its leakSummary, records and message; std::thread joined: nothing', async () => {
    const run = await runNative([program('verdicts-cxx')], { backend, timeout: 120 })
    const got = verdicts(run.json)
    expect(got.scope_list!.leakSummary).toEqual(summary({ definite: { bytes: 16, blocks: 1 }, indirect: { bytes: 16, blocks: 1 } }))
    expect(got.scope_list!.leaks).toEqual(['definite 16/1 main:27', 'indirect 16/1 main:27'])
    expect(got.thread_join).toEqual({ leakSummary: summary({}), suppressed: got.thread_join!.suppressed, leaks: [] })
    expect(failure(run, 'scope_list')).toMatch(/found 2 leaks \(32 B\) in test "scope_list":\n {2}- definite: 16 B in 1 block, allocated at main(\(\))? \(debugee\/verdicts\.cpp:27\)/)
  })

  it("a user's suppression file applies, with memcheck's rules", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-supp-'))
    const file = join(dir, 'known.supp')
    writeFileSync(file, ['# a known leak', '{', '   known-leak', '   Memcheck:Leak', '   match-leak-kinds: definite', '   fun:mall?c', '   fun:known_*', '   ...', '   fun:main', '}', ''].join('\n'))
    const run = await runNative([program('verdicts')], { backend, timeout: 120, suppressions: [file] })
    expect(verdicts(run.json)).toEqual({ ...C_VERDICTS, user_suppressed: { leakSummary: summary({}), suppressed: { bytes: 40, blocks: 1 }, leaks: [] } })
    expect(run.json.leakSummary).toEqual(summary({ definite: { bytes: 15, blocks: 1 } }))
    expect(run.json.suppressed).toEqual({ bytes: 40, blocks: 1 })
  })
})

describe('ready-to-paste suppressions (genSuppressions), on every backend', () => {
  it.each(BACKENDS)('%s: what it generates for a leak silences that leak on every backend', async (backend) => {
    const run = await runNative([program('verdicts')], { backend, timeout: 120, genSuppressions: true })
    const generated = run.test('user_suppressed').leaks[0]!.suppression!
    expect(generated).toMatch(/^\{\n {3}<insert_a_suppression_name_here>\n {3}Memcheck:Leak\n {3}match-leak-kinds: definite\n {3}fun:(\*alloc|malloc)\n {3}fun:known_leak\n {3}fun:main\n\}$/)
    const file = join(mkdtempSync(join(tmpdir(), 'heapspec-gen-')), 'generated.supp')
    writeFileSync(file, generated.replace('<insert_a_suppression_name_here>', 'generated') + '\n')
    for (const other of BACKENDS) {
      const again = await runNative([program('verdicts')], { backend: other, timeout: 120, suppressions: [file] })
      expect(again.test('user_suppressed').suppressed, other).toEqual({ bytes: 40, blocks: 1 })
      expect(again.test('user_suppressed').leaks, other).toEqual([])
    }
  })
})

describe('the three backends agree on the sample programs of this rule', () => {
  it.each(['verdicts', 'verdicts-cxx'])('%s: per-test figures and records equal on preload, gdb and valgrind', async (name) => {
    const runs = await Promise.all(BACKENDS.map((backend) => runNative([program(name)], { backend, timeout: 120 })))
    const [preload, ...others] = runs.map((r) => verdicts(r.json))
    for (const other of others) expect(other).toEqual(preload)
  })
})

describe('the CLI', () => {
  const cli = (args: string[]) => execa('node', [join(ROOT, 'dist', 'src', 'cli.js'), 'run', ...args], { cwd: ROOT, reject: false })

  it.each(BACKENDS)('%s: --gen-suppressions prints one after each loss record; the report counts what was suppressed', async (backend) => {
    const result = await cli(['--backend', backend, '--gen-suppressions', '--', program('verdicts')])
    expect(result.exitCode).toBe(1) // it leaks
    expect(result.stderr.match(/<insert_a_suppression_name_here>/g)).toHaveLength(2)
    expect(result.stderr).toContain('  spawn_join: 3 allocs, 2 frees, 336 bytes allocated, 0 bytes lost, 272 bytes suppressed\n')
    expect(result.stderr).toContain('        suppressed: 0 bytes in 0 blocks\n')
  })

  it('refuses a malformed suppression file before anything runs, with one line and exit 2', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'heapspec-bad-')), 'bad.supp')
    writeFileSync(file, '{\n   x\n   Memcheck:Leak\n   fun:f\n')
    const result = await cli(['--suppressions', file, '--', program('verdicts')])
    expect(result.exitCode).toBe(2)
    expect(result.stderr.trim()).toBe(`heapspec: the suppression file ${file} has a suppression not closed with \`}\` by the end of the file at line 5. Fix it as memcheck's manual describes ("Suppressing errors"), or remove it.`)
  })
})

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { CaptureSpec } from '../../src/capture/backend.js'
import { ValgrindBackend } from '../../src/capture/valgrind/backend.js'
import { BadOptionError, CannotStartError, CaptureFailedError } from '../../src/errors.js'
import type { Frame, LeakRecord } from '../../src/model/types.js'
import { expectations, processesMentioning, program, ROOT } from '../support/debugee.js'

// Real valgrind on the debugee/ programs. No test here skips when valgrind is missing: each one
// that needs it fails with the backend's "not installed" line.

const NOT_INSTALLED = 'heapspec: valgrind is not installed (looked on PATH). Install it (apt-get install valgrind) or use --backend gdb.'
const backend = new ValgrindBackend()

/** A capture spec as normalizeOptions would build it: output captured, a generous timeout. */
function spec(path: string, extra: Partial<CaptureSpec> = {}): CaptureSpec {
  return {
    command: [path],
    displayCommand: [path.slice(ROOT.length + 1)],
    cwd: ROOT,
    env: process.env,
    timeoutMs: 120_000,
    tests: undefined,
    objects: [],
    stdio: 'pipe',
    memdumpFile: undefined,
    suppressions: [],
    suppressionRules: [],
    genSuppressions: false,
    valgrindArgs: [],
    signal: undefined,
    debug: false,
    ...extra,
  }
}

const show = (f: Frame): string => `${f.fn} (${f.file}:${f.line}) [${f.object}]`
const showLeaks = (leaks: LeakRecord[]): string => leaks.map((l) => `${l.kind} ${l.bytes} B / ${l.blocks}: ${l.stack.map(show).join(' <- ')}`).join('\n')

/** The line of `source` (under debugee/) that holds `text`, so edits above it don't break the test. */
function lineOf(source: string, text: string): number {
  const lines = readFileSync(join(ROOT, 'debugee', source), 'utf8').split('\n')
  const at = lines.findIndex((l) => l.includes(text))
  expect(at, `${text} in ${source}`).toBeGreaterThanOrEqual(0)
  return at + 1
}

const rejection = async (promise: Promise<unknown>): Promise<Error> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(Error)
  return error as Error
}

beforeAll(() => {
  execFileSync('make', ['-s', '-C', join(ROOT, 'debugee'), ...['errors', 'hang', ...expectations().map(([name]) => name)].map((n) => `build/${n}`)], {
    stdio: 'inherit',
  })
})

describe.each(expectations())('valgrind backend on %s', (name, expected) => {
  it("reports memcheck's own figures, kinds and leak sites", async () => {
    const { run } = await backend.capture(spec(program(name)))
    expect(run.backend).toBe('valgrind')
    expect(run.program).toEqual({ command: [`debugee/build/${name}`], exitCode: expected.exitCode, signal: expected.signal })
    expect(run.totals).toEqual({ allocations: expected.allocations, frees: expected.frees, bytesAllocated: expected.bytesAllocated })
    expect(run.inUseAtExit).toEqual(expected.inUseAtExit)
    expect(run.leakSummary).toEqual({ definite: expected.definite, indirect: expected.indirect, possible: expected.possible, reachable: expected.reachable })
    expect(run.tests).toEqual([])
    // One record per memcheck loss record, biggest first.
    expect(run.leaks).toHaveLength(expected.sites.length)
    expect(run.leaks.map((l) => [l.bytes, l.blocks])).toEqual([...run.leaks.map((l) => [l.bytes, l.blocks])].sort((a, b) => b[0]! - a[0]! || b[1]! - a[1]!))
    for (const leak of run.leaks) {
      expect(leak.stack[0]?.object ?? '', showLeaks([leak])).not.toMatch(/vgpreload_/)
      expect(leak.suppression, showLeaks([leak])).toMatch(/^\{\n {3}<insert_a_suppression_name_here>\n {3}Memcheck:Leak\n/)
    }
    const unmatched = [...run.leaks]
    for (const site of expected.sites) {
      // The first frame is the allocator's caller: the program's own line, or a libc function
      // that allocates for it (strdup, getdelim, ...) with the program's line right after.
      const at = unmatched.findIndex((l) => {
        const own = l.stack.findIndex((f) => f.object === program(name))
        const frame = l.stack[own]
        return (
          l.kind === site.kind &&
          l.bytes === site.bytes &&
          l.blocks === site.blocks &&
          frame !== undefined &&
          frame.fn === site.fn &&
          basename(frame.file ?? '') === site.file &&
          frame.line === site.line &&
          l.stack.slice(0, own).every((f) => /\/libc\.so/.test(f.object ?? ''))
        )
      })
      expect(at, `${site.kind} ${site.bytes} B / ${site.blocks} at ${site.fn} (${site.file}:${site.line}) in\n${showLeaks(run.leaks)}`).toBeGreaterThanOrEqual(0)
      unmatched.splice(at, 1)
    }
  })
})

describe('valgrind backend on memory errors (debugee/errors)', () => {
  it('reports each error with its kind, text and stacks, and keeps the program output apart', async () => {
    const result = await backend.capture(spec(program('errors')))
    const { run } = result
    // valgrind's own text goes to its log: the program's streams hold only what it wrote.
    expect(result.stdout).toBe('errors: done\n')
    expect(result.stderr).toBe('errors: stderr\n')
    expect(run.program).toEqual({ command: ['debugee/build/errors'], exitCode: 0, signal: null })
    // memcheck's own figures ("6 allocs, 7 frees"): it counts the double free too, as preload and gdb do
    expect(run.totals).toEqual({ allocations: 6, frees: 7, bytesAllocated: 72754 })
    expect(run.inUseAtExit).toEqual({ bytes: 0, blocks: 0 })
    expect(run.leaks).toEqual([])
    const at = (fn: string, text: string): string => `${fn} (debugee/errors.cpp:${lineOf('errors.cpp', text)})`
    const doubleFreeAlloc = lineOf('errors.cpp', 'char *p = static_cast<char *>(malloc(16));')
    expect(run.errors.map((e) => ({ kind: e.kind, what: e.what, first: e.stack[0] && `${e.stack[0].fn} (${e.stack[0].file}:${e.stack[0].line})`, aux: e.auxStacks?.map((a) => a.what.replace(/0x[0-9a-f]+/g, 'ADDR')) }))).toEqual([
      {
        kind: 'mismatched-free',
        what: 'Mismatched free() / delete / delete []',
        first: at('mismatched_free()', 'delete p;'),
        aux: ["Address ADDR is 0 bytes inside a block of size 4 alloc'd"],
      },
      {
        kind: 'invalid-free',
        what: 'Invalid free() / delete / delete[] / realloc()',
        // The second of the two free(p) lines after the allocation.
        first: `double_free() (debugee/errors.cpp:${doubleFreeAlloc + 2})`,
        aux: ["Address ADDR is 0 bytes inside a block of size 16 free'd", "Block was alloc'd at"],
      },
      { kind: 'invalid-read', what: 'Invalid read of size 4', first: at('invalid_read()', 'sink = p[4];'), aux: ["Address ADDR is 0 bytes after a block of size 16 alloc'd"] },
      { kind: 'invalid-write', what: 'Invalid write of size 1', first: at('invalid_write()', "p[10] = 'x';"), aux: ["Address ADDR is 0 bytes after a block of size 10 alloc'd"] },
      { kind: 'uninitialised-value', what: 'Conditional jump or move depends on uninitialised value(s)', first: at('uninitialised_branch()', 'if (*p > 0)'), aux: undefined },
      { kind: 'overlap', what: expect.stringMatching(/^Source and destination overlap in strncpy\(0x[0-9a-f]+, 0x[0-9a-f]+, 5\)$/), first: at('overlapping_copy()', 'strncpy(buf + 2, buf, 5);'), aux: undefined },
    ])
    // The double free's stacks: where it was freed first, and where it was allocated.
    const doubleFree = run.errors[1]!.auxStacks!.map((a) => a.stack[0]?.line)
    expect(doubleFree).toEqual([doubleFreeAlloc + 1, doubleFreeAlloc])
  })
})

describe('valgrind backend: how a run can end', () => {
  it('stops a hung program at the timeout, still reports its leak, and leaves no process behind', async () => {
    const marker = `heapspec-valgrind-timeout-${process.pid}`
    const started = Date.now()
    const { run } = await backend.capture(spec(program('hang'), { command: [program('hang'), marker], timeoutMs: 3_000 }))
    expect(Date.now() - started).toBeLessThan(3_000 + 10_000)
    // SIGTERM first, so memcheck can run its leak check before the program goes.
    expect(run.program).toEqual({ command: ['debugee/build/hang'], exitCode: null, signal: 'SIGTERM', timedOut: true })
    expect(run.totals).toEqual({ allocations: 1, frees: 0, bytesAllocated: 32 })
    expect(run.leakSummary.definite).toEqual({ bytes: 32, blocks: 1 })
    expect(run.leaks.map((l) => [l.kind, l.bytes, l.stack[0]?.fn, l.stack[0]?.line])).toEqual([['definite', 32, 'leak_one', lineOf('hang.c', 'char *p = malloc(32);')]])
    expect(run.warnings).toEqual(["the program was stopped after 3 s; memcheck's figures are those at that moment"])
    expect(processesMentioning(marker)).toEqual([])
  })

  it('stops at once when aborted (Ctrl-C), with an error and no process left', async () => {
    const marker = `heapspec-valgrind-abort-${process.pid}`
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 1_500)
    const error = await rejection(backend.capture(spec(program('hang'), { command: [program('hang'), marker], signal: controller.signal })))
    expect(error).toBeInstanceOf(CaptureFailedError)
    expect(error.message).toBe('heapspec: the valgrind capture of debugee/build/hang was interrupted.')
    expect(processesMentioning(marker)).toEqual([])
  })

  it('reports a crash by its signal, after the leak check memcheck still runs', async () => {
    const { run } = await backend.capture(spec(program('crash')))
    expect(run.program).toEqual({ command: ['debugee/build/crash'], exitCode: null, signal: 'SIGSEGV' })
    expect(run.errors.map((e) => [e.kind, e.what, e.stack[0]?.fn])).toEqual([['invalid-write', 'Invalid write of size 4', 'boom']])
    expect(run.leakSummary.definite).toEqual({ bytes: 384, blocks: 2 })
  })
})

describe('valgrind backend: what it cannot do', () => {
  it('says in one line that valgrind is missing when it is not on PATH', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'heapspec-empty-path-'))
    try {
      const error = await rejection(backend.capture(spec(program('definite'), { env: { ...process.env, PATH: empty } })))
      expect(error).toBeInstanceOf(CannotStartError)
      expect(error.message).toBe(NOT_INSTALLED)

      const saved = process.env.PATH
      process.env.PATH = empty
      try {
        const probed = await rejection(backend.probe())
        expect(probed).toBeInstanceOf(CannotStartError)
        expect(probed.message).toBe(NOT_INSTALLED)
      } finally {
        process.env.PATH = saved
      }
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })

  it('finds valgrind when it is installed', async () => {
    await expect(backend.probe()).resolves.toBeUndefined()
  })

  it('says in one line when valgrind cannot start the program', async () => {
    const source = join(ROOT, 'debugee', 'definite.c')
    const error = await rejection(backend.capture(spec(source)))
    expect(error).toBeInstanceOf(CannotStartError)
    expect(error.message).toBe(
      // valgrind is given the program as the user typed it (its client's argv[0]), so it names it so
      `heapspec: valgrind could not start debugee/definite.c: debugee/definite.c: Permission denied. Check that the program runs on its own, and valgrind's options.`,
    )
  })

  it('rejects options that would break its own before running anything', async () => {
    for (const arg of ['--xml=no', '--xml-fd=3', '--log-file=x.log', '--tool=helgrind', '--leak-check=summary', '--leak-check', '--show-leak-kinds=definite', '--gen-suppressions=yes', '--trace-children=yes', '--error-exitcode=3', '--xtree-memory=none', '--help']) {
      const error = await rejection(backend.capture(spec(program('definite'), { valgrindArgs: [arg] })))
      expect(error, arg).toBeInstanceOf(BadOptionError)
      expect(error.message, arg).toMatch(new RegExp(`^Expected the \`valgrindArgs\` option to leave heapspec's own memcheck options alone, got \`${arg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\` \\(string\\): .+\\. Remove it from valgrindArgs\\.$`))
    }
    const word = await rejection(backend.capture(spec(program('definite'), { valgrindArgs: ['definite'] })))
    expect(word.message).toBe(
      'Expected the `valgrindArgs` option to hold memcheck options (--name=value), got `definite` (string): valgrind would take it for the program to run. Remove it, or give it as --name=value.',
    )
  })

  it('passes other memcheck options through', async () => {
    // Three callers: malloc's replacement frame, which heapspec drops, make and main.
    const { run } = await backend.capture(spec(program('definite'), { valgrindArgs: ['--num-callers=3', '--leak-check=full', '--leak-check-heuristics=all'] }))
    expect(run.leaks.map((l) => l.stack.map((f) => f.fn))).toEqual([
      ['make', 'main'],
      ['make', 'main'],
      ['make', 'main'],
    ])
  })
})

describe('valgrind backend: suppressions', () => {
  it("silences the leaks a generated suppression names, leaving memcheck's heap figures as they are", async () => {
    const first = await backend.capture(spec(program('definite')))
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-supp-'))
    try {
      const file = join(dir, 'known.supp')
      writeFileSync(file, first.run.leaks[0]!.suppression!.replace('<insert_a_suppression_name_here>', 'known-leak') + '\n')
      const { run } = await backend.capture(spec(program('definite'), { suppressions: [file] }))
      // definite.c allocates all three leaks through make() from main: one suppression covers them.
      expect(run.leaks).toEqual([])
      expect(run.leakSummary.definite).toEqual({ bytes: 0, blocks: 0 })
      expect(run.totals).toEqual(first.run.totals)
      expect(run.inUseAtExit).toEqual({ bytes: 600, blocks: 3 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('rejects a suppression file that does not exist, before running', async () => {
    const error = await rejection(backend.capture(spec(program('definite'), { suppressions: ['no-such.supp'] })))
    expect(error).toBeInstanceOf(BadOptionError)
    expect(error.message).toBe(
      `Expected the \`suppressions\` option to list memcheck suppression files, got \`no-such.supp\` (string): no such file (looked for ${join(ROOT, 'no-such.supp')}). Check the path (relative paths start from ${ROOT}).`,
    )
  })

  it("reports a suppression file memcheck cannot read in one line, with memcheck's reason", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-supp-'))
    try {
      const file = join(dir, 'broken.supp')
      writeFileSync(file, '{\n   broken\n   Memcheck:Leak\n   fun:malloc\n')
      const error = await rejection(backend.capture(spec(program('definite'), { suppressions: [file] })))
      expect(error).toBeInstanceOf(CannotStartError)
      expect(error.message).toBe(
        `heapspec: valgrind could not start debugee/build/definite: FATAL: in suppressions file "${file}" near line 4: unexpected end-of-file (when reading stack trace). Fix the option or file it names and run again.`,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import type { RunJson } from '../../src/model/types.js'
import { ROOT, processesMentioning, program } from '../support/debugee.js'

const CLI = join(ROOT, 'dist', 'src', 'cli.js')

/** An empty cache directory: the preload backend has no interposer built, and no compiler on a bare PATH to build one. */
const noCache = (): string => mkdtempSync(join(tmpdir(), 'heapspec-cache-'))

function heapspec(args: string[], env: Record<string, string> = {}) {
  return execa('node', [CLI, ...args], { cwd: ROOT, reject: false, env: { ...env, CI: 'true' } })
}

describe('heapspec run: bad input gets one clear line and exit 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['a missing program', ['run', '--', 'debugee/build/no-such-program'], /^heapspec: cannot run debugee\/build\/no-such-program: no such file\. /],
    ['a directory', ['run', 'debugee/build'], /^heapspec: cannot run debugee\/build: it is a directory\. /],
    ['a non-ELF file', ['run', 'debugee/build/not-elf'], /^heapspec: cannot run debugee\/build\/not-elf: not an ELF executable \(it is a script\)\. /],
    ['a static binary', ['run', 'debugee/build/definite-static'], /^heapspec: cannot run debugee\/build\/definite-static: it is statically linked/],
    ['an unknown option', ['run', '--frobnicate', 'debugee/build/definite'], /^heapspec: unknown option --frobnicate\./],
    ['an unknown backend', ['run', '--backend', 'lldb', 'debugee/build/definite'], /^heapspec: Expected the `backend` option to be one of "auto", "preload", "gdb", "valgrind", got `lldb` \(string\)\./],
    ['a bad timeout', ['run', '--timeout', '-1', 'debugee/build/definite'], /^heapspec: Expected the `timeout` option to be a positive number of seconds, got `-1` \(number\)\./],
    ['a name not on PATH', ['run', 'no-such-tool-anywhere'], /^heapspec: cannot run no-such-tool-anywhere: not found on PATH\./],
  ]
  it.each(cases)('%s', async (_name, args, message) => {
    const result = await heapspec(args)
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toMatch(message)
    expect(result.stderr).not.toMatch(/\n\s+at /) // no stack trace
  })

  it('a gdb without Python', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'heapspec-path-'))
    symlinkSync(process.execPath, join(bin, 'node'))
    // what Debian's gdb-minimal answers to a python command
    writeFileSync(join(bin, 'gdb'), '#!/bin/sh\necho "Python scripting is not supported in this copy of GDB." >&2\nexit 1\n', { mode: 0o755 })
    const result = await heapspec(['run', '--backend', 'gdb', 'debugee/build/definite'], { PATH: `${bin}:/usr/bin:/bin` })
    expect(result.stderr.trim()).toBe(
      'heapspec: this gdb cannot run Python (Python scripting is not supported in this copy of GDB.). Install a gdb built with Python (apt-get install gdb) or use --backend preload or --backend valgrind.',
    )
    expect(result.exitCode).toBe(2)
  })

  it('gdb missing from PATH', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'heapspec-path-'))
    // node itself must stay reachable; gdb must not
    symlinkSync(process.execPath, join(bin, 'node'))
    const result = await heapspec(['run', '--backend', 'gdb', 'debugee/build/definite'], { PATH: bin, XDG_CACHE_HOME: noCache() })
    // valgrind is missing too, so the advice names no other backend to try
    expect(result.stderr.trim()).toBe('heapspec: gdb is not installed (looked on PATH). Install it (apt-get install gdb).')
    expect(result.exitCode).toBe(2)
  })

  it('gdb missing from PATH, valgrind there: names valgrind', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'heapspec-path-'))
    symlinkSync(process.execPath, join(bin, 'node'))
    // a valgrind that answers the probe; the run stops before it is used
    writeFileSync(join(bin, 'valgrind'), '#!/bin/sh\necho valgrind-3.19.0\n', { mode: 0o755 })
    const result = await heapspec(['run', '--backend', 'gdb', 'debugee/build/definite'], { PATH: bin, XDG_CACHE_HOME: noCache() })
    expect(result.stderr.trim()).toBe('heapspec: gdb is not installed (looked on PATH). Install it (apt-get install gdb) or use --backend valgrind.')
    expect(result.exitCode).toBe(2)
  })

  it('no backend installed: each says what to install, none sends the user to another', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'heapspec-path-'))
    symlinkSync(process.execPath, join(bin, 'node'))
    const valgrind = await heapspec(['run', '--backend', 'valgrind', 'debugee/build/definite'], { PATH: bin, XDG_CACHE_HOME: noCache() })
    expect(valgrind.stderr.trim()).toBe('heapspec: valgrind is not installed (looked on PATH). Install it (apt-get install valgrind).')
    const auto = await heapspec(['run', 'debugee/build/definite'], { PATH: bin, XDG_CACHE_HOME: noCache() })
    expect(auto.stderr.trim()).toMatch(/^heapspec: no backend can run \S*debugee\/build\/definite: .*Install one \(apt-get install gcc\)\. gdb is not installed \(looked on PATH\)\. Install it \(apt-get install gdb\)\. valgrind is not installed \(looked on PATH\)\. Install it \(apt-get install valgrind\)\.$/)
    expect(auto.stderr).not.toContain('--backend')
    expect(auto.exitCode).toBe(2)
  })
})

describe('heapspec run on real programs', () => {
  it('prints the leak report, writes --json and --out, and fails on a leak', async () => {
    const out = mkdtempSync(join(tmpdir(), 'heapspec-out-'))
    const json = join(out, 'run.json')
    const result = await heapspec(['run', '--json', json, '--out', join(out, 'dir'), '--', 'debugee/build/definite'])
    expect(result.exitCode).toBe(1)
    expect(result.stdout).toBe('') // the report is on stderr, never in the program's stdout
    expect(result.stderr).toContain('300 bytes in 1 block is definitely lost')
    expect(result.stderr).toMatch(/ {4}at make \(debugee\/definite\.c:\d+\)\n {4}by main \(debugee\/definite\.c:\d+\)/)
    expect(result.stderr).toContain('  definitely lost: 600 bytes in 3 blocks')
    expect(result.stderr).not.toContain('\x1b[') // no colour in CI logs
    const text = readFileSync(json, 'utf8')
    expect(text).toMatch(/^\{\n {2}"schema": 1,\n/) // a small run indented for reading
    const run = JSON.parse(text)
    expect(run.schema).toBe(1)
    expect(run.leakSummary.definite).toEqual({ bytes: 600, blocks: 3 })
    for (const file of ['leak-report.txt', 'heapspec.json', 'memdump.txt']) expect(existsSync(join(out, 'dir', file))).toBe(true)
    const memdump = readFileSync(join(out, 'dir', 'memdump.txt'), 'utf8')
    expect(memdump.match(/^malloc /gm)).toHaveLength(13)
    expect(memdump.match(/^free /gm)).toHaveLength(10)
    expect(readFileSync(join(out, 'dir', 'leak-report.txt'), 'utf8')).toContain('definitely lost: 600 bytes in 3 blocks')
    // and the HTML report, by source file
    expect(readFileSync(join(out, 'dir', 'index.html'), 'utf8')).toContain('<a href="files/debugee_definite.c.html">debugee/definite.c</a>')
    expect(JSON.parse(readFileSync(join(out, 'dir', 'leak-summary.json'), 'utf8')).files[0]).toMatchObject({ file: 'debugee/definite.c', leaked: { definite: { bytes: 600, blocks: 3 } } })

    // heapspec report reads it back (as it merges saved runs), writes its report, and fails on the leak
    const merged = await heapspec(['report', '--out', join(out, 'merged'), join(out, 'dir')])
    expect(merged.exitCode).toBe(1)
    expect(merged.stdout).toMatch(/^heapspec: 1 test leaked memory \(definitely, indirectly or possibly lost\)\n\n {2}debugee\/build\/definite\n {4}definitely lost: 600 bytes in 3 blocks\n {4}top allocation site: make \(debugee\/definite\.c:\d+\)\n/)
    expect(merged.stdout).toContain(`heapspec: merged 1 run into ${join(out, 'merged', 'index.html')}`)
    expect(existsSync(join(out, 'merged', 'heapspec-runs.json'))).toBe(true)
  })

  it('fails on memory errors, each told with the test case that made it; --json keeps them per test case', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'heapspec-cli-')), 'run.json')
    const result = await heapspec(['run', '--backend', 'valgrind', '--json', out, '--', 'debugee/build/errors-tests'])
    expect(result.exitCode).toBe(1)
    expect(result.stdout).toBe('errors-tests: done')
    expect(result.stderr.startsWith('errors-tests: stderr\nheapspec: debugee/build/errors-tests exited with code 0 (backend: valgrind)\n')).toBe(true)
    expect(result.stderr).toContain('\ninvalid-read: Invalid read of size 4 (in test case "read_past_end")\n    at read_past_end() (debugee/errors-tests.cpp:59)\n')
    expect(result.stderr).toContain('\ninvalid-read (2 times): Invalid read of size 1 (in test case "repeat_1")\n')
    expect(result.stderr.endsWith('\n  repeat_2: 1 allocs, 1 frees, 8 bytes allocated, 0 bytes lost, 1 memory error')).toBe(true)
    expect(result.stderr).toContain('\n  clean: 1 allocs, 1 frees, 40 bytes allocated, 0 bytes lost\n')
    const run = JSON.parse(readFileSync(out, 'utf8')) as RunJson
    expect(run.errors.map((e) => e.test)).toEqual([null, 'mismatched', 'double_free', 'read_past_end', 'write_past_end', 'use_after_free', 'uninitialised', 'overlap', 'thread_write', 'repeat_1'])
    expect(run.tests.map((t) => [t.name, t.errors?.map((e) => e.kind)])).toEqual([
      ['mismatched', ['mismatched-free']],
      ['double_free', ['invalid-free']],
      ['read_past_end', ['invalid-read']],
      ['write_past_end', ['invalid-write']],
      ['use_after_free', ['invalid-read']],
      ['uninitialised', ['uninitialised-value']],
      ['overlap', ['overlap']],
      ['thread_write', ['invalid-write']],
      ['clean', []],
      ['repeat_1', ['invalid-read']],
      ['repeat_2', ['invalid-read']],
    ])
  })

  it('heapspec report: bad input gets one clear line and exit 2', async () => {
    const none = await heapspec(['report'])
    expect(none.exitCode).toBe(2)
    expect(none.stderr).toMatch(/^heapspec: report needs at least one PATH\./)
    const missing = await heapspec(['report', 'no/such/dir'])
    expect(missing.exitCode).toBe(2)
    expect(missing.stderr.trim()).toBe('heapspec: cannot read no/such/dir: no such file or directory.')
    const empty = await heapspec(['report', '--out', join(mkdtempSync(join(tmpdir(), 'heapspec-out-')), 'r'), 'debugee'])
    expect(empty.exitCode).toBe(2)
    expect(empty.stderr.trim()).toBe('heapspec: no saved runs in debugee (looked for heapspec-runs.json, written by the reporters and heapspec report, and heapspec.json, written by heapspec run --out).')
  })

  it('reports the leaks and the signal of a program that crashes', async () => {
    const json = join(mkdtempSync(join(tmpdir(), 'heapspec-crash-')), 'run.json')
    const result = await heapspec(['run', '--json', json, program('crash')])
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toContain('was killed by SIGSEGV')
    const run = JSON.parse(readFileSync(json, 'utf8'))
    expect(run.program).toMatchObject({ exitCode: null, signal: 'SIGSEGV' })
    expect(run.leakSummary.definite).toEqual({ bytes: 384, blocks: 2 })
  })

  it('stops a hanging program at --timeout and leaves no process behind', async () => {
    // a copy under a unique name, so no other test's process can be mistaken for a leftover
    const hang = join(mkdtempSync(join(tmpdir(), 'heapspec-hang-')), 'hang-gdb-timeout')
    copyFileSync(program('hang'), hang)
    const started = Date.now()
    const result = await heapspec(['run', '--backend', 'gdb', '--timeout', '3', hang])
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toContain('was stopped by the timeout')
    // what it leaked until then is still reported, as memcheck does for a program it stops
    expect(result.stderr).toContain('warning: the program was stopped after 3 s; its leaks are those of that moment')
    expect(result.stderr).toMatch(/32 bytes in 1 block is definitely lost\n {4}at leak_one \(debugee\/hang\.c:\d+\)/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(processesMentioning('hang-gdb-timeout')).toEqual([])
  })

  it('stops the program on Ctrl-C and reports what it captured until then', async () => {
    const hang = join(mkdtempSync(join(tmpdir(), 'heapspec-int-')), 'hang-gdb-interrupt')
    copyFileSync(program('hang'), hang)
    const child = execa('node', [CLI, 'run', '--backend', 'gdb', hang], { cwd: ROOT, reject: false, env: { CI: 'true' } })
    // wait until the program runs under gdb, then interrupt as a terminal would
    for (let i = 0; i < 100 && processesMentioning('hang-gdb-interrupt').length < 3; i++) await new Promise((r) => setTimeout(r, 100))
    await new Promise((r) => setTimeout(r, 1000)) // past its first allocation
    child.kill('SIGINT')
    const result = await child
    expect(result.exitCode).toBe(130)
    // no timeout was given: it said "stopped by the timeout"
    expect(result.stderr).toContain('was stopped when heapspec got SIGINT (backend: gdb)')
    expect(result.stderr).toMatch(/warning: the program was stopped after [\d.]+ s; its leaks are those of that moment/)
    expect(result.stderr).toMatch(/32 bytes in 1 block is definitely lost\n {4}at leak_one \(debugee\/hang\.c:\d+\)/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(processesMentioning('hang-gdb-interrupt')).toEqual([])
  })

  it('prints the header directory for include', async () => {
    const result = await heapspec(['include'])
    expect(result.exitCode).toBe(0)
    expect(existsSync(join(result.stdout.trim(), 'heapspec.h'))).toBe(true)
  })
})

describe('heapspec run: its own options, before PROGRAM only, checked before the program runs', () => {
  const fresh = () => mkdtempSync(join(tmpdir(), 'heapspec-cli-'))

  it('--opt=VALUE works; --log-file takes the report, stderr keeps the program\'s', async () => {
    const dir = fresh()
    const result = await heapspec(['run', `--json=${join(dir, 'run.json')}`, `--out=${join(dir, 'out')}`, `--log-file=${join(dir, 'report.txt')}`, '--', 'debugee/build/definite'])
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toBe('')
    expect(readFileSync(join(dir, 'report.txt'), 'utf8')).toContain('definitely lost: 600 bytes in 3 blocks')
    expect(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).leakSummary.definite).toEqual({ bytes: 600, blocks: 3 })
    expect(existsSync(join(dir, 'out', 'heapspec.json'))).toBe(true)
  })

  const refused: [string, (dir: string) => string[], RegExp][] = [
    ['--out naming a file', (dir) => (writeFileSync(join(dir, 'f'), ''), ['--out', join(dir, 'f')]), /^heapspec: --out \S+\/f is a file, not a directory\. /],
    ['--json in a missing directory', (dir) => ['--json', join(dir, 'no', 'run.json')], /^heapspec: --json \S+: the directory \S+\/no does not exist\. Create it first/],
    ['--json naming a directory', (dir) => ['--json', dir], /^heapspec: --json \S+ is a directory\. /],
    ['--json under /proc', () => ['--json', '/proc/self/run.json'], /^heapspec: --json \/proc\/self\/run\.json is inside \/proc, a kernel file system\. /],
    ['--log-file in a missing directory', (dir) => ['--log-file', join(dir, 'no', 'r.txt')], /^heapspec: --log-file \S+: the directory \S+ does not exist\. /],
    ['--out under /proc', () => ['--out', '/proc/heapspec-out'], /^heapspec: --out \/proc\/heapspec-out is inside \/proc, a kernel file system\. /],
    // these printed the whole usage after their line
    ['an unknown option', () => ['--bogus'], /^heapspec: unknown option --bogus\. Run `heapspec --help` for the usage\.$/m],
    ['--backend without a value', () => ['--backend'], /^heapspec: --backend needs a value\. Run `heapspec --help` for the usage\.$/m],
  ]
  it.each(refused)('refuses %s in one line, exit 2, before the program runs', async (_name, flags, message) => {
    const dir = fresh()
    const pidfile = join(dir, 'pids')
    const result = await heapspec(['run', ...flags(dir), '--', 'debugee/build/as-native', 'fork', pidfile])
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toMatch(message)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(existsSync(pidfile)).toBe(false) // the program never ran
  })

  it('refuses a path the user cannot write (a user id with no passwd entry, as docker run --user gives)', async () => {
    const dir = fresh() // root's, mode 0700 by mkdtemp
    const result = await execa('setpriv', ['--reuid', '1234', '--regid', '1234', '--clear-groups', 'node', CLI, 'run', '--json', join(dir, 'run.json'), '--', 'debugee/build/definite'], {
      cwd: ROOT,
      reject: false,
      env: { PATH: process.env.PATH, CI: 'true' },
    })
    expect(result.exitCode).toBe(2)
    expect(result.stderr.trim()).toMatch(/^heapspec: --json \S+: the directory \S+ (is not writable|does not exist)\. /)
  })

  it.each(['preload', 'gdb', 'valgrind'])('runs under %s for a user id with no passwd entry and no HOME', async (backend) => {
    expect((await execa('getent', ['passwd', '1234'], { reject: false })).exitCode).toBe(2) // no such entry
    const result = await execa('setpriv', ['--reuid', '1234', '--regid', '1234', '--clear-groups', 'node', CLI, 'run', '--backend', backend, '--', 'debugee/build/definite'], {
      cwd: ROOT,
      reject: false,
      env: { PATH: process.env.PATH, CI: 'true' },
    })
    expect(result.stderr).toContain(`exited with code 0 (backend: ${backend})`)
    expect(result.stderr).toContain('definitely lost: 600 bytes in 3 blocks')
    expect(result.exitCode).toBe(1)
  })

  it.each(['1e-3', '0.5', '.5', '1e9', '99999999999'])('--timeout %s is a number of seconds (past a timer\'s range: no limit)', async (seconds) => {
    const result = await heapspec(['run', '--timeout', seconds, '--', 'debugee/build/definite'])
    expect(result.stderr).not.toMatch(/Expected the `timeout` option/)
    if (Number(seconds) >= 1) expect(result.stderr).toContain('exited with code 0')
    expect([0, 1]).toContain(result.exitCode)
  })

  it('| head -1 reads the program\'s first line; neither side prints a stack trace', async () => {
    const result = await execa('sh', ['-c', `node ${CLI} run -- sort -n | head -1`], {
      cwd: ROOT,
      reject: false,
      input: Array.from({ length: 200_000 }, (_, i) => String(200_000 - i)).join('\n') + '\n',
      env: { PATH: process.env.PATH, CI: 'true' },
    })
    expect(result.stdout).toBe('1')
    // no JavaScript stack trace (the leak report's frames name the program's sources)
    expect(result.stderr).not.toMatch(/EPIPE|\n\s+at .*(node:|\.[cm]?js:\d+)/)
    // sort dies of SIGPIPE, and its leaks are classified first, as memcheck does
    expect(result.stderr).toMatch(/^heapspec: sort -n was killed by SIGPIPE \(backend: preload\)\n/)
    expect(result.stderr).not.toContain('not classified')
  })
})

describe("heapspec's start: V8's code cache for the CLI's bundle, kept in the private cache directory", () => {
  /** A cache home whose heapspec directory has `mode`, and the code caches found in it after `runs` runs of `heapspec include`. */
  async function cacheAfter(mode: number, runs: number, before?: (dir: string) => void) {
    const home = noCache()
    const dir = join(home, 'heapspec')
    mkdirSync(dir)
    chmodSync(dir, mode)
    before?.(dir)
    const outputs: string[] = []
    for (let i = 0; i < runs; i++) {
      const result = await heapspec(['include'], { XDG_CACHE_HOME: home })
      expect(result.exitCode).toBe(0)
      expect(result.stderr).toBe('')
      outputs.push(result.stdout)
    }
    const caches = readdirSync(dir).filter((f) => /^heapspec-cli-[0-9a-f]{16}-v\d+\.\d+\.\d+-x64\.v8$/.test(f))
    return { dir, outputs, caches }
  }

  it('is written once, private (mode 0600), and the next run with it prints the same', async () => {
    const { dir, outputs, caches } = await cacheAfter(0o700, 2)
    expect(outputs).toEqual([join(ROOT, 'src'), join(ROOT, 'src')])
    expect(caches).toHaveLength(1)
    expect(statSync(join(dir, caches[0]!)).mode & 0o777).toBe(0o600)
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('one V8 refuses (not a cache at all) is replaced, and the run is unchanged', async () => {
    const first = await cacheAfter(0o700, 1)
    const name = first.caches[0]!
    const { dir, outputs, caches } = await cacheAfter(0o700, 1, (d) => writeFileSync(join(d, name), 'not a code cache', { mode: 0o600 }))
    expect(outputs).toEqual([join(ROOT, 'src')])
    expect(caches).toEqual([name])
    expect(readFileSync(join(dir, name)).toString('latin1')).not.toBe('not a code cache')
  })

  it('is neither read nor written in a directory others can write', async () => {
    const { outputs, caches } = await cacheAfter(0o777, 2)
    expect(outputs).toEqual([join(ROOT, 'src'), join(ROOT, 'src')])
    expect(caches).toEqual([])
  })

  it('one that is not a private file (group-writable) is replaced by a private one', async () => {
    const first = await cacheAfter(0o700, 1)
    const name = first.caches[0]!
    const { dir, outputs } = await cacheAfter(0o700, 1, (d) => {
      writeFileSync(join(d, name), 'not a code cache')
      chmodSync(join(d, name), 0o620)
    })
    expect(outputs).toEqual([join(ROOT, 'src')])
    expect(readFileSync(join(dir, name), 'latin1')).not.toBe('not a code cache')
    expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600)
  })
})

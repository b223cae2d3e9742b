import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import { emptyLeakSummary, type Frame, type LeakRecord, type RunJson } from '../../src/model/types.js'
import { ROOT } from '../support/debugee.js'

// `heapspec report` merges saved runs that other machines wrote (shards, CI artifacts). Here they
// are written by an attacker: through the real CLI, what reaches the HTML report, the terminal and
// GitHub's workflow-command parser is checked.

const CLI = join(ROOT, 'dist', 'src', 'cli.js')

const top = mkdtempSync(join(tmpdir(), 'heapspec-hostile-'))
/** The project `heapspec report` runs in. */
const project = join(top, 'project')

const MARKUP = '<img src=x onerror=alert(1)>'
const SECRETS = ['SECRET-OUTSIDE', 'SECRET-HIDDEN', 'SECRET-ENVIRON', 'root:x:0:0', 'SECRET-LINKED', 'SECRET-DOTENV']

function report(args: string[], env: Record<string, string> = {}) {
  return execa('node', [CLI, 'report', ...args], {
    cwd: project,
    reject: false,
    timeout: 30_000,
    extendEnv: false,
    env: { PATH: process.env.PATH!, CI: 'true', HEAPSPEC_SECRET: 'SECRET-ENVIRON', ...env },
  })
}

function frame(fn: string, file: string | null, line: number | null): Frame {
  return { fn, file, line, object: 'build/prog' }
}

function leak(stack: Frame[], test: string | null = null, bytes = 16): LeakRecord {
  return { kind: 'definite', bytes, blocks: 1, test, stack }
}

/** A run of `command` with these loss records (summaries added up as a backend would). */
function runOf(leaks: LeakRecord[], command = ['build/prog']): RunJson {
  const summary = emptyLeakSummary()
  for (const l of leaks) {
    summary[l.kind].bytes += l.bytes
    summary[l.kind].blocks += l.blocks
  }
  return {
    schema: 1,
    backend: 'preload',
    program: { command, exitCode: 0, signal: null },
    totals: { allocations: leaks.length, frees: 0, bytesAllocated: leaks.reduce((n, l) => n + l.bytes, 0) },
    inUseAtExit: { bytes: summary.definite.bytes, blocks: summary.definite.blocks },
    leakSummary: summary,
    leaks,
    tests: [],
    errors: [],
  }
}

/** Writes a saved run as `heapspec run --out` would (`DIR/heapspec.json`); returns DIR, relative to the project. */
function save(dir: string, data: unknown): string {
  mkdirSync(join(project, dir), { recursive: true })
  writeFileSync(join(project, dir, 'heapspec.json'), typeof data === 'string' ? data : JSON.stringify(data))
  return dir
}

beforeAll(() => {
  mkdirSync(join(project, 'src', '.hidden'), { recursive: true })
  mkdirSync(join(top, 'outside'))
  writeFileSync(join(project, 'src', 'leak.c'), '#include <stdlib.h>\nchar *p(void) { return malloc(10); }\n')
  writeFileSync(join(project, 'src', 'we,ird:na%me.c'), 'void *w(void) { return 0; }\n')
  writeFileSync(join(top, 'outside', 'secret.c'), 'SECRET-OUTSIDE\n')
  writeFileSync(join(project, 'src', '.hidden', 'key.c'), 'SECRET-HIDDEN\n')
  writeFileSync(join(project, '.env'), 'SECRET-DOTENV\n')
  writeFileSync(join(top, 'outside', 'linked.c'), 'SECRET-LINKED\n')
  symlinkSync(join(top, 'outside', 'linked.c'), join(project, 'src', 'link.c'))
  execFileSync('mkfifo', [join(project, 'src', 'fifo.c')])
})

describe('heapspec report on hostile saved runs', () => {
  it('quotes source lines only from the project’s own source files, never through .., /proc, a symlink, a FIFO, a hidden or non-source file', async () => {
    const files = ['../outside/secret.c', '../../../../../../../../etc/passwd', '/proc/self/environ', 'src/.hidden/key.c', '.env', 'src/link.c', 'src/fifo.c', `${project}/../outside/secret.c`]
    const leaks = [leak([frame('p', 'src/leak.c', 2)], null, 1000), ...files.map((f, i) => leak([frame(`f${i}`, f, 1)]))]
    save('paths', runOf(leaks))
    const result = await report(['--out', 'out-paths', 'paths'])
    expect(result.stderr).toBe('')
    expect(result.exitCode).toBe(1)
    const pages = readdirSync(join(project, 'out-paths', 'files')).map((f) => readFileSync(join(project, 'out-paths', 'files', f), 'utf8'))
    const html = [readFileSync(join(project, 'out-paths', 'index.html'), 'utf8'), ...pages].join('\n')
    // the project's own source is still quoted
    expect(html).toContain('<pre class="source">2 | char *p(void) { return malloc(10); }</pre>')
    for (const secret of SECRETS) expect(html).not.toContain(secret)
    expect(html.match(/<pre class="source">/g)).toHaveLength(1)
    for (const out of ['leak-summary.json', 'heapspec-runs.json', 'leak-report.txt']) {
      const text = readFileSync(join(project, 'out-paths', out), 'utf8')
      for (const secret of SECRETS) expect(text).not.toContain(secret)
    }
  })

  it('escapes markup in every string it writes into the HTML report', async () => {
    const name = (what: string) => `${what}${MARKUP}"'&`
    const run = runOf(
      [leak([frame(name('fn'), `src/${MARKUP}.c`, 3), frame(name('caller'), 'src/leak.c', 2)], name('case'))],
      [name('build/prog'), name('--arg')],
    )
    run.tests = [{ name: name('case'), allocations: 1, frees: 0, bytesAllocated: 16, leakSummary: run.leakSummary }]
    const saved = { heapspecRuns: 1, runs: [{ tests: [{ file: name('test/x.test.ts'), name: name('test'), leaks: null }], run }] }
    mkdirSync(join(project, 'markup'), { recursive: true })
    writeFileSync(join(project, 'markup', 'heapspec-runs.json'), JSON.stringify(saved))
    const result = await report(['--out', 'out-markup', 'markup'])
    expect(result.exitCode).toBe(1)
    const dir = join(project, 'out-markup')
    const html = [join(dir, 'index.html'), ...readdirSync(join(dir, 'files')).map((f) => join(dir, 'files', f))].map((f) => readFileSync(f, 'utf8')).join('\n')
    expect(html).not.toContain('<img')
    expect(html).not.toMatch(/<(?!(!doctype|\/?(html|head|meta|title|style|body|h1|h2|p|a|table|thead|tbody|tr|th|td|br|span|code|pre|section|ol|li|strong)[ >]))/)
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;')
    expect(html).toContain('<td>test/x.test.ts&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp; &gt; test&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;</td>')
    expect(readdirSync(join(dir, 'files'))).toEqual(['src_img_src_x_onerror_alert_1_.c.html'])
  })

  it('refuses a number field holding markup, in one line naming the file and the field, and writes nothing', async () => {
    const run = runOf([leak([frame('p', 'src/leak.c', 2)])]) as unknown as { leaks: { bytes: unknown }[] }
    run.leaks[0]!.bytes = MARKUP
    save('number-markup', run)
    const result = await report(['--out', 'out-number', 'number-markup'])
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toBe(`heapspec: cannot read saved run number-markup/heapspec.json: leaks[0].bytes must be a non-negative integer, got "${MARKUP}" (string).`)
    expect(result.stdout).toBe('')
    expect(() => statSync(join(project, 'out-number'))).toThrow()
  })

  it('malformed runs: one line per bad file, naming the file and the field, exit 2, never an internal error', async () => {
    const good = runOf([leak([frame('p', 'src/leak.c', 2)])])
    const bad = (change: (run: Record<string, any>) => void): Record<string, unknown> => { // eslint-disable-line @typescript-eslint/no-explicit-any
      const run = JSON.parse(JSON.stringify(good)) as Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
      change(run)
      return run
    }
    const dirs = [
      save('malformed/kind', bad((r) => (r.leaks[0].kind = 'lost'))),
      save('malformed/null-frame', bad((r) => (r.leaks[0].stack = [null]))),
      save('malformed/file-number', bad((r) => (r.leaks[0].stack[0].file = 123))),
      save('malformed/deep', JSON.stringify(good).replace(/}$/, `,"x":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`)),
      save('malformed/not-json', '{"schema": 1,'),
      save('malformed/good', good),
    ]
    const result = await report(['--out', 'out-malformed', ...dirs])
    expect(result.exitCode).toBe(2)
    expect(result.stderr.split('\n')).toEqual([
      'heapspec: cannot read saved run malformed/kind/heapspec.json: leaks[0].kind must be one of "definite", "indirect", "possible", "reachable", got "lost" (string).',
      'heapspec: cannot read saved run malformed/null-frame/heapspec.json: leaks[0].stack[0] must be an object, got null.',
      'heapspec: cannot read saved run malformed/file-number/heapspec.json: leaks[0].stack[0].file must be a string or null, got 123 (number).',
      `heapspec: cannot read saved run malformed/deep/heapspec.json: x${'.a'.repeat(29)}… nests more than 64 levels deep.`,
      expect.stringMatching(/^heapspec: cannot read saved run malformed\/not-json\/heapspec\.json: not JSON \(.*\)\.$/),
    ])
    expect(result.stderr).not.toContain('internal error')
  })

  it('refuses a FIFO in one line instead of waiting on it', async () => {
    mkdirSync(join(project, 'fifo'))
    execFileSync('mkfifo', [join(project, 'fifo', 'heapspec.json')])
    const started = Date.now()
    const result = await report(['--out', 'out-fifo', 'fifo/heapspec.json'])
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toBe('heapspec: cannot read saved run fifo/heapspec.json: it is a FIFO, not a regular file.')
    for (const device of ['/dev/zero', '/dev/null']) {
      const dev = await report(['--out', 'out-fifo', device])
      expect(dev.exitCode).toBe(2)
      expect(dev.stderr).toMatch(new RegExp(`^heapspec: cannot read saved run ${device}: it is a (character device|FIFO|socket), not a regular file\\.$`))
    }
  })

  it('refuses a saved run over 64 MiB before reading it', async () => {
    mkdirSync(join(project, 'large'))
    const file = join(project, 'large', 'heapspec.json')
    writeFileSync(file, '')
    truncateSync(file, 65 * 1024 * 1024)
    const result = await report(['--out', 'out-large', 'large'])
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toBe('heapspec: cannot read saved run large/heapspec.json: it is 65 MiB, more than the 64 MiB heapspec reads.')
  })
})

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

/** A run as an attacker edits it: any field, any value. */
type Loose = Record<string, any>

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
    expect(html).toContain('<span class="line site">2 | char *p(void) { return malloc(10); }</span>')
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
    const saved = { heapspecRuns: 1, runs: [{ tests: [{ file: name('test/x.test.ts'), name: name('test'), leaks: null, verdict: 'failed' }], run }] }
    mkdirSync(join(project, 'markup'), { recursive: true })
    writeFileSync(join(project, 'markup', 'heapspec-runs.json'), JSON.stringify(saved))
    const result = await report(['--out', 'out-markup', 'markup'])
    expect(result.exitCode).toBe(1)
    const dir = join(project, 'out-markup')
    const html = [join(dir, 'index.html'), ...readdirSync(join(dir, 'files')).map((f) => join(dir, 'files', f))].map((f) => readFileSync(f, 'utf8')).join('\n')
    expect(html).not.toContain('<img')
    expect(html).not.toMatch(/<(?!(!doctype|\/?(html|head|meta|title|style|body|h1|h2|p|a|table|thead|tbody|tr|th|td|br|span|code|pre|section|ol|li|strong|dl|dt|dd)[ >]))/)
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

  it('prints names with newlines, ANSI escapes and workflow commands so that no line of theirs is a workflow command, on the terminal or in annotations', async () => {
    const inject = (what: string) => `${what}\n::error file=README.md,line=1::pwned\n::add-mask::${what}\r\n::stop-commands::tok\x1b[2J\x1b]8;;http://x\x07`
    const run = runOf(
      [
        leak([frame(inject('fn'), 'src/leak.c', 2)], inject('case'), 64),
        leak([frame('w', 'src/we,ird:na%me.c', 1)], '%0A::warning::x', 32),
      ],
      [inject('build/prog')],
    )
    run.program.exitCode = 3
    run.program.signal = inject('SIGSEGV')
    run.errors = [{ kind: inject('invalid-free'), stack: [] }]
    const saved = { heapspecRuns: 1, runs: [{ tests: [{ file: null, name: '::stop-commands::tok', leaks: [0], verdict: 'failed' }, { file: inject('test/t.ts'), name: inject('t'), leaks: null, verdict: 'failed' }], run }] }
    mkdirSync(join(project, 'commands'), { recursive: true })
    writeFileSync(join(project, 'commands', 'heapspec-runs.json'), JSON.stringify(saved))
    const result = await report(['--out', 'out-commands', 'commands'], { GITHUB_ACTIONS: 'true', GITHUB_WORKSPACE: project })
    expect(result.exitCode).toBe(1)
    expect(result.stderr).toBe('')
    const lines = result.stdout.split('\n')
    // the only workflow commands are heapspec's own annotations, one per leak (the tests failed on them: ::error)
    const commands = lines.filter((l) => /^\s*(::|##\[)/.test(l))
    expect(commands).toHaveLength(2)
    for (const c of commands) expect(c).toMatch(/^::error (file=[^:]*,line=\d+,)?title=heapspec%3A memory definitely lost::/)
    expect(result.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/) // no control character but heapspec's own line ends
    // the test named like a command is printed, escaped
    expect(lines).toContain('  \\::stop-commands::tok')
    expect(result.stdout).toContain('fn\\n::error file=README.md,line=1::pwned\\n::add-mask::fn\\r\\n::stop-commands::tok\\x1b[2J\\x1b]8;;http://x\\x07 (src/leak.c:2)')
    expect(result.stdout).toContain('heapspec: build/prog\\n::error file=README.md,line=1::pwned')
    // annotations: data escaped as GitHub documents (%25, %0D, %0A), properties also : and ,
    const weird = commands.find((c) => c.includes('we%2Cird'))!
    expect(weird).toMatch(/^::error file=src\/we%2Cird%3Ana%25me\.c,line=1,title=heapspec%3A memory definitely lost::32 bytes in 1 block is definitely lost in test case "%250A::warning::x" of build\/prog\\n::error/)
    const first = commands.find((c) => !c.includes('we%2Cird'))!
    expect(first).toContain('in test case "case\\n::error file=README.md,line=1::pwned\\n::add-mask::case\\r\\n::stop-commands::tok\\x1b[2J')
    expect(first).not.toMatch(/[\r\n]/)
    // leak-report.txt too
    const text = readFileSync(join(project, 'out-commands', 'leak-report.txt'), 'utf8')
    expect(text.split('\n').filter((l) => /^\s*(::|##\[)/.test(l))).toEqual([])
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/)
  })

  it('malformed runs: one line per bad file, naming the file and the field, exit 2, never an internal error', async () => {
    const good = runOf([leak([frame('p', 'src/leak.c', 2)])])
    const bad = (change: (run: Loose) => void): Loose => {
      const run = JSON.parse(JSON.stringify(good)) as Loose
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

  it('never quotes a file it cannot read as a saved run (a symbolic link to a secret), nor follows one found in a directory', async () => {
    mkdirSync(join(project, 'environ'))
    symlinkSync('/proc/self/environ', join(project, 'environ', 'heapspec.json'))
    const named = await report(['--out', 'out-environ', 'environ/heapspec.json'])
    expect(named.exitCode).toBe(2)
    expect(named.stderr).toBe('heapspec: cannot read saved run environ/heapspec.json: not JSON.')
    const found = await report(['--out', 'out-environ', 'environ'])
    expect(found.exitCode).toBe(2)
    expect(found.stderr).toMatch(/^heapspec: no saved runs in environ \(looked for heapspec-runs\.json/)
    for (const secret of SECRETS) expect(named.stderr + found.stderr).not.toContain(secret)
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

  it('bounds what it writes and prints: stacks per site, frames per stack, tests listed, annotations', async () => {
    // one site leaking from 5,000 stacks (one of them 300 frames deep), claimed by 3,000 tests;
    // 60 sites of their own, each in its own test case
    const deep = Array.from({ length: 300 }, (_, i) => frame(`r${i}`, 'src/leak.c', 1))
    const site = Array.from({ length: 5000 }, (_, i) => leak([frame('p', 'src/leak.c', 2), ...(i === 0 ? deep : [frame(`caller${i}`, 'src/leak.c', 1)])], null, 10_000 - i))
    const many = Array.from({ length: 60 }, (_, i) => leak([frame(`site${i}`, 'src/leak.c', 1 + (i % 2)), frame(`own${i}`, 'src/own.c', i + 1)], `case${i}`))
    const run = runOf([...site, ...many])
    const tests = Array.from({ length: 3000 }, (_, i) => ({ file: 'test/big.test.ts', name: `test ${String(i).padStart(4, '0')}`, leaks: null, verdict: 'failed' }))
    mkdirSync(join(project, 'big'))
    writeFileSync(join(project, 'big', 'heapspec-runs.json'), JSON.stringify({ heapspecRuns: 1, runs: [{ tests, run }, { tests: [], run: runOf(many) }] }))
    const result = await report(['--out', 'out-big', 'big'], { GITHUB_ACTIONS: 'true' })
    expect(result.stderr).toBe('')
    expect(result.exitCode).toBe(1)
    const page = readFileSync(join(project, 'out-big', 'files', 'src_leak.c.html'), 'utf8')
    expect(page.length).toBeLessThan(400_000)
    const pSite = page.slice(page.indexOf('<h2><code>p, line 2</code></h2>'))
    const section = pSite.slice(0, pSite.indexOf('</section>'))
    expect(section.match(/<ol class="stack">/g)).toHaveLength(20)
    expect(section).toContain('<p class="muted">... and 4,980 more stacks (')
    expect(section).toContain('<li class="frame system">... and 251 more frames</li>')
    expect(section).toContain('<code>test/big.test.ts &gt; test 0049</code>, <span class="muted">and more</span>')
    expect(section).not.toContain('test 0050')
    const lines = result.stdout.split('\n')
    expect(lines.filter((l) => l.startsWith('::error '))).toHaveLength(50)
    expect(lines).toContain('heapspec: 5,010 more leaks not annotated (GitHub shows the first 50); the HTML report lists them all.')
    expect(lines.filter((l) => /^ {2}\S/.test(l))).toHaveLength(51) // 50 tests, and the line counting the rest
    expect(lines).toContain('  ... and 3,010 more tests (the HTML report lists them all)')
    // the index lists 1,000 tests; a big merge is written compact, no bigger than what was read
    const index = readFileSync(join(project, 'out-big', 'index.html'), 'utf8')
    expect(index.match(/<tr class="\w+"><td>test\/big\.test\.ts &gt; /g)).toHaveLength(1000) // worst first: the tests that checked the whole run
    expect(index).toContain('<p class="muted">... and 2,060 more tests (leak-summary.json lists them all)</p>')
    const input = statSync(join(project, 'big', 'heapspec-runs.json')).size
    expect(input).toBeGreaterThan(1024 * 1024)
    expect(statSync(join(project, 'out-big', 'heapspec-runs.json')).size).toBeLessThan(input * 1.1)
    expect(statSync(join(project, 'out-big', 'leak-summary.json')).size).toBeLessThan(input * 2)
  })

  it('a run claimed whole by 20,000 tests, with 20,000 equal records, is reported in seconds, not tests × records', async () => {
    const run = runOf(Array.from({ length: 20_000 }, () => leak([frame('p', 'src/leak.c', 2)])))
    const tests = Array.from({ length: 20_000 }, (_, i) => ({ file: 'test/many.test.ts', name: `t${i}`, leaks: null, verdict: 'failed' }))
    mkdirSync(join(project, 'claims'))
    writeFileSync(join(project, 'claims', 'heapspec-runs.json'), JSON.stringify({ heapspecRuns: 1, runs: [{ tests, run }] }))
    const started = Date.now()
    const result = await report(['--out', 'out-claims', 'claims'], { GITHUB_ACTIONS: 'true' })
    expect(Date.now() - started).toBeLessThan(20_000)
    expect(result.stderr).toBe('')
    expect(result.exitCode).toBe(1)
    expect(result.stdout).toContain('heapspec: 20000 tests leaked memory (definitely, indirectly or possibly lost)')
    expect(result.stdout).toContain('    definitely lost: 320,000 bytes in 20,000 blocks')
    const annotations = result.stdout.split('\n').filter((l) => l.startsWith('::error '))
    expect(annotations).toHaveLength(1)
    expect(annotations[0]).not.toContain('runs)')
    expect(annotations[0]).toMatch(/%0ATests: test\/many\.test\.ts > t0; test\/many\.test\.ts > t1; .*; and 19970 more$/)
  })
})

import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../support/debugee.js'

// heapspec's reporters in real Vitest and Jest runs: the packed package installed into the fixture
// projects under test/fixtures/reporters (as frameworks.test.ts installs the examples), each run
// with the reporter configured, and what it prints (summary, progress, annotations) and writes
// (HTML, JSON, saved runs) checked; then Vitest's shards merged by `heapspec report`, and a report
// directory that cannot be written failing the run. npm test builds dist/ before any test runs.

const FIXTURES = join(ROOT, 'test', 'fixtures', 'reporters')

interface Framework {
  name: 'vitest' | 'jest'
  ext: 'ts' | 'js'
  command: string[]
}

const FRAMEWORKS: Framework[] = [
  { name: 'vitest', ext: 'ts', command: ['node_modules/.bin/vitest', 'run'] },
  { name: 'jest', ext: 'js', command: ['node_modules/.bin/jest'] },
]

let work: string
const project = (f: Framework): string => join(work, f.name)

/** The environment of a fixture run: a CI log (no colour, no TTY), without the CI's own markers unless asked. */
function runEnv(extra: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, CI: 'true', NO_COLOR: '1' }
  for (const name of ['GITHUB_ACTIONS', 'GITHUB_WORKSPACE', 'FORCE_COLOR', 'HEAPSPEC_RESULTS_DIR', 'FIXTURE_OUT', 'FIXTURE_PROGRESS', 'FIXTURE_SCENARIO']) delete env[name]
  return { ...env, ...extra }
}

/** Runs the framework in its fixture project; returns its output, ANSI and npm's warnings stripped, and its exit code. */
async function runFramework(f: Framework, args: string[], env: Record<string, string> = {}) {
  const [bin, ...binArgs] = f.command
  const result = await execa(bin!, [...binArgs, ...args], { cwd: project(f), env: runEnv(env), extendEnv: false, reject: false, all: true })
  const output = stripVTControlCharacters(result.all ?? '')
    .split('\n')
    .filter((l) => !l.startsWith('npm warn'))
    .join('\n')
  return { output, exitCode: result.exitCode }
}

/** The reporter's summary block: from its first line to the line naming the report. */
function summaryOf(output: string): string {
  const start = output.search(/^heapspec: (\d+ tests? leaked memory|leaks no test checked|\d+ tests? allowed)/m)
  const end = output.indexOf('\n', output.indexOf('heapspec: leak report in', start))
  if (start < 0 || end < 0) throw new Error(`no heapspec summary in:\n${output}`)
  return output.slice(start, end)
}

/** Every file under a directory, relative path to content. */
function filesUnder(dir: string): Record<string, string> {
  const files: Record<string, string> = {}
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name)
      files[relative(dir, path)] = readFileSync(path, 'utf8')
    }
  }
  return files
}

/**
 * The summary both reporters print for the fixture (test files end in .ts for Vitest, .js for
 * Jest): the one test whose matcher failed on the leak (describeNative's), the run no test checked
 * (made in a test), and the two tests that allowed the leak they checked, by number only.
 */
function expectedSummary(ext: string, out: string): string {
  const test = (name: string) => `  ${name}
    definitely lost: 16 bytes in 1 block, indirectly lost: 29 bytes in 3 blocks
    top allocation site: push (native/list.c:21)`
  return [
    'heapspec: 1 test leaked memory (definitely, indirectly or possibly lost)',
    '',
    test(`test/made.test.${ext} > list --leak > test_drop_list`),
    '',
    'heapspec: leaks no test checked (definitely, indirectly or possibly lost), where their runs were made',
    '',
    test(`test/made.test.${ext} > made in the test, checked by nothing`),
    '',
    'heapspec: 2 tests allowed the leaks they checked (definitely, indirectly or possibly lost; see the leak report)',
    '',
    `heapspec: leak report in ${out}/index.html`,
  ].join('\n')
}

beforeAll(async () => {
  for (const built of ['dist/reporter/vitest.js', 'dist/cjs/reporter/jest.cjs', 'dist/cjs/matchers/jest.cjs', 'dist/matchers/vitest.js']) {
    if (!existsSync(join(ROOT, built))) throw new Error(`${built} is missing: run npm run build first (npm test does).`)
  }
  work = mkdtempSync(join(tmpdir(), 'heapspec-reporters-'))
  const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT })
  const tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename)
  await Promise.all(
    FRAMEWORKS.map(async (f) => {
      const dir = project(f)
      cpSync(join(FIXTURES, f.name), dir, { recursive: true })
      mkdirSync(join(dir, 'native'))
      mkdirSync(join(dir, 'build'))
      cpSync(join(ROOT, 'examples', 'vitest', 'native', 'list.c'), join(dir, 'native', 'list.c'))
      cpSync(join(FIXTURES, 'native', 'slow.c'), join(dir, 'native', 'slow.c'))
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string>>
      manifest.devDependencies!.heapspec = `file:${tarball}`
      // As the repository's own package.json: the registry mirror lacks unrs-resolver 1.13's bindings (jest's resolver).
      manifest.overrides = { 'unrs-resolver': '1.12.2' }
      writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2))
      await execa('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir })
      const include = (await execa('node_modules/.bin/heapspec', ['include'], { cwd: dir })).stdout.trim()
      await execa('cc', ['-g', '-O0', `-I${include}`, '-o', 'build/list', 'native/list.c'], { cwd: dir })
      await execa('cc', ['-g', '-O0', '-o', 'build/slow', 'native/slow.c'], { cwd: dir })
      for (const name of ['six', 'overrun']) {
        cpSync(join(FIXTURES, 'native', `${name}.c`), join(dir, 'native', `${name}.c`))
        await execa('cc', ['-g', '-O0', `-I${include}`, '-o', `build/${name}`, `native/${name}.c`], { cwd: dir })
      }
    }),
  )
}, 300_000)

afterAll(() => {
  if (work && !process.env.HEAPSPEC_KEEP) rmSync(work, { recursive: true, force: true })
})

/** Each framework's output of the whole fixture run, for the shards to be compared with. */
const wholeRun: Partial<Record<Framework['name'], string>> = {}

describe.each(FRAMEWORKS)('heapspec/reporter/$name in a real $name run', (f) => {
  it('prints the per-test summary, progress and annotations, and writes the HTML and JSON report', async () => {
    const { output, exitCode } = await runFramework(f, [], { FIXTURE_OUT: 'full', FIXTURE_PROGRESS: '1', GITHUB_ACTIONS: 'true' })
    wholeRun[f.name] = output
    // describeNative's test_drop_list fails: the leak is real
    expect(exitCode).toBe(1)
    expect(summaryOf(output)).toBe(expectedSummary(f.ext, 'full'))

    // the 2.5 s capture, named with its test, while it runs and when it ends
    const progress = output.split('\n').filter((l) => l.startsWith('heapspec: capturing') || l.includes(' finished after '))
    expect(progress.map((l) => l.replace(/\d+ s\b/g, 'N s'))).toEqual([
      'heapspec: capturing build/slow under gdb (a capture that takes a while): N s so far',
      'heapspec: build/slow under gdb (a capture that takes a while) finished after N s',
    ])

    // one annotation per leak, at the user's line: push() allocates at 21 and strdup()s at 22, a
    // frame below libc's strdup.c, which is not in the project; an error, as a test failed on it
    expect(output.split('\n').filter((l) => l.startsWith('::warning'))).toEqual([])
    const annotations = output.split('\n').filter((l) => l.startsWith('::error'))
    expect(annotations.map((l) => l.slice(0, l.indexOf('::', 2)))).toEqual([
      '::error file=native/list.c,line=21,title=heapspec%3A memory definitely lost',
      '::error file=native/list.c,line=21,title=heapspec%3A memory indirectly lost',
      '::error file=native/list.c,line=22,title=heapspec%3A memory indirectly lost',
      '::error file=native/list.c,line=22,title=heapspec%3A memory indirectly lost',
    ])
    expect(annotations[0]!.slice(annotations[0]!.indexOf('::', 2) + 2).split('%0A')).toEqual([
      '16 bytes in 1 block is definitely lost in test case "test_drop_list" of build/list --leak',
      '  at push (native/list.c:21)',
      '  by test_drop_list (native/list.c:49)',
      '  by main (native/list.c:67)',
      '(in 3 runs)',
      `Tests: test/made.test.${f.ext} > list --leak > test_drop_list`,
      `Allowed by: test/checked.test.${f.ext} > checked by matchers > bounds test_drop_list; test/checked.test.${f.ext} > checked by matchers > catches the leak`,
      `Checked by no test; made in: test/made.test.${f.ext} > made in the test, checked by nothing`,
    ])

    const out = join(project(f), 'full')
    const summary = JSON.parse(readFileSync(join(out, 'leak-summary.json'), 'utf8'))
    expect(summary.runs).toBe(4) // the leaky program three times, the slow one once
    expect(summary.files.map((file: { file: string }) => file.file)).toEqual(['native/list.c'])
    const [site21, site22] = summary.files[0].sites
    expect(site21).toMatchObject({ fn: 'push', line: 21, leaked: { definite: { bytes: 48, blocks: 3 }, indirect: { bytes: 48, blocks: 3 } }, testCases: ['test_drop_list'] })
    expect(site21.tests).toHaveLength(4)
    expect(site22).toMatchObject({ fn: 'push', line: 22, leaked: { definite: { bytes: 0, blocks: 0 }, indirect: { bytes: 39, blocks: 6 } } })
    expect(site22.stacks[0].frames[0]).toMatchObject({ fn: 'strdup', line: 42 })
    // the terminal's rows, and the tests that allowed the leak, each with how it stands
    expect(summary.tests.map((t: { test: string; status: string }) => `${t.status} ${t.test}`)).toEqual([
      `failed test/made.test.${f.ext} > list --leak > test_drop_list`,
      `unchecked test/made.test.${f.ext} > made in the test, checked by nothing`,
      `tolerated test/checked.test.${f.ext} > checked by matchers > bounds test_drop_list`,
      `tolerated test/checked.test.${f.ext} > checked by matchers > catches the leak`,
    ])
    expect(site21.stacks[0].status).toBe('failed')

    const index = readFileSync(join(out, 'index.html'), 'utf8')
    expect(index).toContain('<a href="files/native_list.c.html">native/list.c</a>')
    const page = readFileSync(join(out, 'files', 'native_list.c.html'), 'utf8')
    expect(page).toContain('<h2><code>push, line 21</code></h2>')
    expect(page).toContain('<span class="line site">21 |     struct item *item = malloc(sizeof *item);</span>')
    expect(page).toContain('<li class="frame">test_drop_list (native/list.c:49)</li>')
    expect(readFileSync(join(out, 'leak-report.txt'), 'utf8')).toBe(expectedSummary(f.ext, 'full').split('\n\nheapspec: leak report')[0] + '\n')
  })

  // the six-byte leak of native/six.c's leaks_six, as the annotations and the summary name it
  const sixHead = '6 bytes in 1 block is definitely lost in test case "leaks_six" of build/six'

  it('with one leak every test that checked it allowed: no test leaked memory, a ::warning, and every report agrees', async () => {
    const { output, exitCode } = await runFramework(f, [], { FIXTURE_SCENARIO: 'tolerated', FIXTURE_OUT: 'tolerated', GITHUB_ACTIONS: 'true' })
    expect(exitCode, output).toBe(0)
    const summary = 'heapspec: 3 tests allowed the leaks they checked (definitely, indirectly or possibly lost; see the leak report)'
    expect(summaryOf(output)).toBe(`${summary}\n\nheapspec: leak report in tolerated/index.html`)
    expect(output).not.toMatch(/leaked memory|no test checked/)
    expect(output.split('\n').filter((l) => l.startsWith('::error'))).toEqual([])
    const warnings = output.split('\n').filter((l) => l.startsWith('::warning'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.slice(warnings[0]!.indexOf('::', 2) + 2).split('%0A')).toEqual([
      sixHead,
      '  at leak_six (native/six.c:10)',
      '  by main (native/six.c:17)',
      '(in 2 runs)',
      `Allowed by: scenarios/tolerated.test.${f.ext} > a run made in beforeAll > allows the six bytes; scenarios/tolerated.test.${f.ext} > a run made in beforeAll > allows them on the whole run; scenarios/tolerated.test.${f.ext} > made in the test, its leak allowed`,
    ])
    const out = join(project(f), 'tolerated')
    expect(readFileSync(join(out, 'leak-report.txt'), 'utf8')).toBe(`${summary}\n`)
    const json = JSON.parse(readFileSync(join(out, 'leak-summary.json'), 'utf8'))
    expect(json.leaked.definite).toEqual({ bytes: 12, blocks: 2 })
    expect(json.tests.map((t: { test: string; status: string }) => t.status)).toEqual(['tolerated', 'tolerated', 'tolerated'])
    expect(json.files[0].sites[0].stacks.map((s: { status: string }) => s.status)).toEqual(['tolerated'])
    // the tests that passed or only counted allocations are no leak of theirs
    expect(JSON.stringify(json.tests)).not.toMatch(/counts the allocations only|finds clean clean/)
    const index = readFileSync(join(out, 'index.html'), 'utf8')
    expect(index).toContain('<td>allowed by the test</td>')
    expect(index).not.toContain('failed the test')
  })

  it('with a run made in beforeAll and one test checking another test case: the unchecked leak, in every report alike', async () => {
    const { output, exitCode } = await runFramework(f, [], { FIXTURE_SCENARIO: 'before-all', FIXTURE_OUT: 'before-all', GITHUB_ACTIONS: 'true' })
    expect(exitCode, output).toBe(0)
    const summary = [
      'heapspec: leaks no test checked (definitely, indirectly or possibly lost), where their runs were made',
      '',
      `  scenarios/before-all.test.${f.ext} (outside any test)`,
      '    definitely lost: 6 bytes in 1 block',
      '    top allocation site: leak_six (native/six.c:10)',
    ].join('\n')
    expect(summaryOf(output)).toBe(`${summary}\n\nheapspec: leak report in before-all/index.html`)
    const out = join(project(f), 'before-all')
    expect(readFileSync(join(out, 'leak-report.txt'), 'utf8')).toBe(`${summary}\n`)
    const json = JSON.parse(readFileSync(join(out, 'leak-summary.json'), 'utf8'))
    expect(json.leaked.definite).toEqual({ bytes: 6, blocks: 1 })
    expect(json.tests).toEqual([
      { test: `scenarios/before-all.test.${f.ext} (outside any test)`, file: `scenarios/before-all.test.${f.ext}`, status: 'unchecked', leaked: expect.objectContaining({ definite: { bytes: 6, blocks: 1 } }), topSite: 'leak_six (native/six.c:10)' },
    ])
    const index = readFileSync(join(out, 'index.html'), 'utf8')
    expect(index).toContain(`<td>scenarios/before-all.test.${f.ext} (outside any test)</td><td>checked by no test</td>`)
    expect(output.split('\n').filter((l) => l.startsWith('::error'))).toEqual([])
    const warnings = output.split('\n').filter((l) => l.startsWith('::warning'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/^::warning file=native\/six\.c,line=10,title=heapspec%3A memory definitely lost::/)
    expect(warnings[0]).toContain(`%0AChecked by no test; made in: scenarios/before-all.test.${f.ext} (outside any test)`)
  })

  it('with a memory error in a test case: its matcher fails, and the summary, the annotation, the text, JSON and HTML reports name its line', async () => {
    const { output, exitCode } = await runFramework(f, [], { FIXTURE_SCENARIO: 'memory-errors', FIXTURE_OUT: 'memory-errors', GITHUB_ACTIONS: 'true' })
    expect(exitCode, output).toBe(1)
    // the matcher's own message, in the framework's failure
    expect(output).toContain('Expected no memory errors, found 1 error in test "reads_past_end":')
    expect(output).toMatch(/  - invalid-read: Invalid read of size 4 at read_past_end \(native\/overrun\.c:11\) <- main \(native\/overrun\.c:18\)\n\s+Address 0x[0-9a-f]+ is 0 bytes after a block of size 16 alloc'd at read_past_end \(native\/overrun\.c:10\) <- main \(native\/overrun\.c:18\)/)
    const program = 'build/overrun' // as the reports name it: relative to the project
    const block = [
      'heapspec: memory errors in 1 test case (or outside any)',
      '',
      `  ${program} > reads_past_end (run in scenarios/memory-errors.test.${f.ext})`,
      '    invalid-read: Invalid read of size 4 at read_past_end (native/overrun.c:11)',
      "      Address 0x... is 0 bytes after a block of size 16 alloc'd at read_past_end (native/overrun.c:10)",
    ].join('\n')
    const start = output.indexOf('heapspec: memory errors in')
    expect(output.slice(start, output.indexOf('\n\nheapspec: leak report in', start)).replace(/0x[0-9a-f]+/, '0x...')).toBe(block)
    expect(output).toContain('heapspec: leak report in memory-errors/index.html')
    const out = join(project(f), 'memory-errors')
    expect(readFileSync(join(out, 'leak-report.txt'), 'utf8').replace(/0x[0-9a-f]+/, '0x...')).toBe(`heapspec: no leaks in 1 run.\n\n${block}\n`)
    const json = JSON.parse(readFileSync(join(out, 'leak-summary.json'), 'utf8'))
    expect(json.memoryErrors).toEqual([
      {
        testCase: `${program} > reads_past_end`,
        files: [`scenarios/memory-errors.test.${f.ext}`],
        kind: 'invalid-read',
        what: 'Invalid read of size 4',
        count: 1,
        site: { fn: 'read_past_end', file: 'native/overrun.c', line: 11, object: 'build/overrun' },
        story: [expect.stringMatching(/^Address 0x[0-9a-f]+ is 0 bytes after a block of size 16 alloc'd at read_past_end \(native\/overrun\.c:10\)$/)],
        stack: [
          { fn: 'read_past_end', file: 'native/overrun.c', line: 11, object: 'build/overrun' },
          { fn: 'main', file: 'native/overrun.c', line: 18, object: 'build/overrun' },
        ],
      },
    ])
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('<a href="memory-errors.html">1 memory error</a> in 1 test case (or outside any)')
    const page = readFileSync(join(out, 'memory-errors.html'), 'utf8')
    expect(page).toContain('<h2><code>native/overrun.c, line 11</code></h2>')
    expect(page).toContain('<span class="line site">11 |     sink = p[4];</span>')
    expect(page).toContain(`<strong>invalid-read: Invalid read of size 4</strong> in <code>${program} &gt; reads_past_end</code>`)
    const annotations = output.split('\n').filter((l) => l.startsWith('::error'))
    expect(annotations).toHaveLength(1)
    expect(annotations[0]!.replace(/0x[0-9a-f]+/, '0x...')).toBe(
      '::error file=native/overrun.c,line=11,title=heapspec%3A memory error (invalid-read)::' +
        [
          `invalid-read: Invalid read of size 4 in ${program} > reads_past_end`,
          '  at read_past_end (native/overrun.c:11)',
          '  by main (native/overrun.c:18)',
          "  Address 0x... is 0 bytes after a block of size 16 alloc'd at read_past_end (native/overrun.c:10)",
          `Run in: scenarios/memory-errors.test.${f.ext}`,
        ].join('%0A'),
    )
  })

  it('fails the run when the report cannot be written, and says why', async () => {
    // the same passing tests, once with a report directory that can be written, once without
    const [passing, broken] = await Promise.all(['checked', 'package.json/report'].map((out) => runFramework(f, [`test/checked.test.${f.ext}`], { FIXTURE_OUT: out })))
    expect(passing!.exitCode, passing!.output).toBe(0)
    expect(broken!.exitCode).toBe(1)
    expect(broken!.output).toContain(`heapspec: cannot write the leak report to ${join(project(f), 'package.json', 'report')}: ENOTDIR: not a directory`)
  })
})

// Vitest's --shard splits the test files between runs (CI machines). After the whole run above.
describe('vitest shards', () => {
  it('merged by heapspec report, give the report of the whole run', async () => {
    const f = FRAMEWORKS[0]!
    const shards = await Promise.all(['1/2', '2/2'].map((shard, i) => runFramework(f, [`--shard=${shard}`], { FIXTURE_OUT: `shard${i + 1}` })))
    for (const shard of shards) expect(shard.output).toMatch(/Test Files .*\((1|2)\)\n/)
    const merged = await execa('node_modules/.bin/heapspec', ['report', '--out', 'merged', 'shard1', 'shard2'], { cwd: project(f), env: runEnv({}), extendEnv: false, reject: false })
    expect(merged.exitCode, merged.stderr).toBe(1) // the runs leak
    expect(merged.stdout).toBe(`${summaryOf(wholeRun.vitest ?? '').split('\n\nheapspec: leak report')[0]}\n\nheapspec: merged 4 runs into merged/index.html`)
    const full = filesUnder(join(project(f), 'full'))
    expect(Object.keys(full).sort()).toEqual(['files/native_list.c.html', 'heapspec-runs.json', 'index.html', 'leak-report.txt', 'leak-summary.json'])
    expect(filesUnder(join(project(f), 'merged'))).toEqual(full)
  })
})

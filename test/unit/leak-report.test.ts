import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { HeapspecError } from '../../src/errors.js'
import type { RunJson } from '../../src/model/types.js'
import { githubAnnotations } from '../../src/report/annotations.js'
import type { LeakSummaryJson } from '../../src/report/json-summary.js'
import { buildLeakTree, type LeakNode } from '../../src/report/leak-tree.js'
import { canonicalRuns, findSavedRuns, groupRunRefs, parseSavedRuns, serializeSavedRuns, type RecordedRun } from '../../src/report/saved-runs.js'
import { formatSummaryReport, formatTestSummary, summarizeTests } from '../../src/report/test-summary.js'
import { FAILING_KINDS } from '../../src/report/text.js'
import { writeLeakReport } from '../../src/report/write-report.js'
import { parserRun } from '../matchers/run-fixture.js'

// parserRun()'s loss records, by index:
//   0 indirect 128 B  node_new (src/list.c:17)        test case "parses header"
//   1 definite 1024 B __strdup (./string/strdup.c) <- parse_header (src/parser.c:42)   "parses header"
//   2 possible 40 B   std::__new_allocator (/usr/include/...) <- load_table (src/table.cpp:9)   outside test cases
//   3 reachable 1024 B _IO_file_doallocate (libc) <- main (tests/main.c:90)   outside test cases
const root = process.cwd()
const file = join(root, 'test', 'parser.test.ts')

/**
 * The parser run as a Vitest run would hand it over: made in a beforeAll, checked by three tests
 * whose leak matchers failed on the whole run's failing kinds, failed on one test case, and passed
 * on a clean one (the reachable record 3 no leak matcher judged).
 */
function recorded(): RecordedRun[] {
  return groupRunRefs(
    [
      { id: 'a', file, name: null, leaks: null, run: parserRun() },
      { id: 'a', file, name: 'parser > leaks nothing', leaks: [0, 1, 2], verdict: 'failed' },
      { id: 'a', file, name: 'parser > parses header', leaks: [0, 1], verdict: 'failed' },
      { id: 'a', file, name: 'parser > parses header', leaks: [1], verdict: 'failed' },
      { id: 'a', file, name: 'parser > parses empty', leaks: [], verdict: 'passed' },
    ],
    root,
  )
}

describe('saved runs', () => {
  it('group a recorder’s claims by run: paths relative to the root, one entry per test and verdict, claims outside tests kept', () => {
    const runs = groupRunRefs(
      [{ id: 'a', file, name: 'parser > parses header', leaks: [1, 0], verdict: 'failed' }, { id: 'a', file, name: null, leaks: null, run: parserRun() }, { id: 'lost', file, name: 'x', leaks: null }],
      root,
    )
    expect(runs).toHaveLength(1) // the claim whose run never arrived is dropped
    expect(runs[0]!.tests).toEqual([
      { file: 'test/parser.test.ts', name: null, leaks: null },
      { file: 'test/parser.test.ts', name: 'parser > parses header', leaks: [0, 1], verdict: 'failed' },
    ])
    expect(runs[0]!.run.program.command).toEqual(['build/parser_tests', '--all'])
    expect(runs[0]!.run.leaks[0]!.stack[0]!.object).toBe('build/parser_tests')
    expect(runs[0]!.run.leaks[1]!.stack[0]!.object).toBe('/lib/x86_64-linux-gnu/libc.so.6')

    expect(recorded()[0]!.tests).toEqual([
      { file: 'test/parser.test.ts', name: null, leaks: null },
      { file: 'test/parser.test.ts', name: 'parser > leaks nothing', leaks: [0, 1, 2], verdict: 'failed' },
      { file: 'test/parser.test.ts', name: 'parser > parses empty', leaks: [], verdict: 'passed' },
      { file: 'test/parser.test.ts', name: 'parser > parses header', leaks: [0, 1], verdict: 'failed' },
    ])
    // made outside any test and claimed by none: the file answers for it
    expect(groupRunRefs([{ id: 'a', file, name: null, leaks: null, run: parserRun() }], root)[0]!.tests).toEqual([{ file: 'test/parser.test.ts', name: null, leaks: null }])
  })

  it('are saved in one order whatever order the tests ran or the shards merged in', () => {
    const other: RecordedRun = { tests: [{ file: 'test/other.test.ts', name: 'other', leaks: null }], run: { ...parserRun(), leaks: [] } }
    const one = recorded()[0]!
    expect(serializeSavedRuns([one, other])).toBe(serializeSavedRuns([other, one]))
    expect(canonicalRuns([one, other]).map((r) => r.tests[0]!.file)).toEqual(['test/other.test.ts', 'test/parser.test.ts'])
    expect(parseSavedRuns(serializeSavedRuns([one, other]), 'x')).toEqual(canonicalRuns([one, other]))
  })

  it('are read from a run JSON or saved runs, and anything else is refused naming the file', () => {
    expect(parseSavedRuns(JSON.stringify(parserRun()), 'heapspec.json')).toEqual([{ tests: [], run: parserRun() }])
    expect(() => parseSavedRuns('{"schema": 2}', 'dir/heapspec.json')).toThrow('heapspec: cannot read saved run dir/heapspec.json: schema must be 1, got 2 (number).')
    expect(() => parseSavedRuns('{"runs": []}', 'dir/heapspec.json')).toThrow(
      'heapspec: cannot read saved run dir/heapspec.json: it holds neither saved runs (heapspec-runs.json, with "heapspecRuns": 1) nor a run (heapspec.json, with "schema": 1); point at files written by heapspec run --out, heapspec report or the reporters.',
    )
    expect(() => parseSavedRuns('{', 'x.json')).toThrow(/^heapspec: cannot read saved run x\.json: not JSON/)
  })

  it('are found in the directories below each path, never in the report being written', () => {
    const top = mkdtempSync(join(tmpdir(), 'heapspec-saved-'))
    for (const dir of ['shard-1/heapspec-report', 'shard-2/heapspec-report', 'cli', 'both', 'out']) mkdirSync(join(top, dir), { recursive: true })
    for (const dir of ['shard-1/heapspec-report', 'shard-2/heapspec-report', 'both', 'out']) writeFileSync(join(top, dir, 'heapspec-runs.json'), serializeSavedRuns([]))
    for (const dir of ['cli', 'both']) writeFileSync(join(top, dir, 'heapspec.json'), JSON.stringify(parserRun()))
    const found = findSavedRuns([top], [join(top, 'out')]).map((f) => f.slice(top.length + 1))
    expect(found.sort()).toEqual(['both/heapspec-runs.json', 'cli/heapspec.json', 'shard-1/heapspec-report/heapspec-runs.json', 'shard-2/heapspec-report/heapspec-runs.json'])
    expect(() => findSavedRuns([join(top, 'out')], [join(top, 'out')])).toThrow(/^heapspec: no saved runs in .*out \(looked for heapspec-runs\.json/)
    expect(() => findSavedRuns([join(top, 'missing')])).toThrow(/^heapspec: cannot read .*missing: no such file or directory\.$/)
  })
})

describe('the leak tree', () => {
  it('files each leak under the first source line in the user’s code, worst file and site first', () => {
    const tree = buildLeakTree(recorded(), FAILING_KINDS)
    const root = tree.getRoot()
    expect(root.files.map((f) => [f.file, f.userCode, f.sites.map((s) => `${s.fn}:${s.line}`)])).toEqual([
      ['src/parser.c', true, ['parse_header:42']],
      ['src/list.c', true, ['node_new:17']],
      ['src/table.cpp', true, ['load_table:9']],
      ['tests/main.c', true, ['main:90']], // reachable only: last
    ])
    const parser = root.files[0]!.sites[0]!
    expect(parser.leaked.definite).toEqual({ bytes: 1024, blocks: 1 })
    expect(parser.tests).toEqual(['test/parser.test.ts > parser > leaks nothing', 'test/parser.test.ts > parser > parses header'])
    expect(parser.testCases).toEqual(['parses header'])
    expect(parser.stacks[0]!.frames[0]!.fn).toBe('__strdup')
    expect(parser.stacks[0]!.programs).toEqual(['build/parser_tests --all'])
    // outside the test cases: only the test that checked the whole run answers
    expect(root.files[2]!.sites[0]!.tests).toEqual(['test/parser.test.ts > parser > leaks nothing'])
    expect(root.files[2]!.sites[0]!.stacks[0]!.status).toBe('failed')
    // the reachable block no leak matcher judged: under the file, where the run was made
    expect(root.files[3]!.sites[0]!.tests).toEqual(['test/parser.test.ts (outside any test)'])
    expect(root.files[3]!.sites[0]!.stacks[0]!.status).toBe('unchecked')
    expect(root.leaked).toEqual({ definite: { bytes: 1024, blocks: 1 }, indirect: { bytes: 128, blocks: 2 }, possible: { bytes: 40, blocks: 1 }, reachable: { bytes: 1024, blocks: 1 } })
  })

  it('counts a run once however many tests checked it, and adds up the runs', () => {
    const twice = [...recorded(), { tests: [{ file: 'test/again.test.ts', name: 'again', leaks: null }], run: recorded()[0]!.run }]
    const root = buildLeakTree(twice, FAILING_KINDS).getRoot()
    expect(root.runs).toBe(2)
    expect(root.files[0]!.leaked.definite).toEqual({ bytes: 2048, blocks: 2 })
    expect(root.files[0]!.sites[0]!.stacks).toHaveLength(1)
    expect(root.files[0]!.sites[0]!.tests).toContain('test/again.test.ts > again')
  })

  it('is walked as istanbul walks its trees: start, the root as a summary, each file as a detail, end', () => {
    const calls: string[] = []
    const name = (n: LeakNode) => ('file' in n ? String(n.file) : 'root')
    buildLeakTree(recorded(), FAILING_KINDS).visit(
      {
        onStart: (n) => calls.push(`start ${name(n)}`),
        onSummary: (n) => calls.push(`summary ${name(n)}`),
        onDetail: (n) => calls.push(`detail ${name(n)}`),
        onSummaryEnd: (n) => calls.push(`summary-end ${name(n)}`),
        onEnd: (n) => calls.push(`end ${name(n)}`),
      },
      null,
    )
    expect(calls).toEqual(['start root', 'summary root', 'detail src/parser.c', 'detail src/list.c', 'detail src/table.cpp', 'detail tests/main.c', 'summary-end root', 'end root'])
  })
})

describe('the per-test summary', () => {
  it('lists each test that leaked a failing kind, worst first, with its top allocation site', () => {
    const rows = summarizeTests(recorded(), FAILING_KINDS)
    expect(rows.map((r) => [r.test, r.status, r.topSite])).toEqual([
      ['test/parser.test.ts > parser > leaks nothing', 'failed', 'parse_header (src/parser.c:42)'],
      ['test/parser.test.ts > parser > parses header', 'failed', 'parse_header (src/parser.c:42)'],
      ['test/parser.test.ts (outside any test)', 'unchecked', 'main (tests/main.c:90)'],
    ])
    expect(formatTestSummary(rows, { kinds: FAILING_KINDS })).toBe(`heapspec: 2 tests leaked memory (definitely, indirectly or possibly lost)

  test/parser.test.ts > parser > leaks nothing
    definitely lost: 1,024 bytes in 1 block, indirectly lost: 128 bytes in 2 blocks, possibly lost: 40 bytes in 1 block
    top allocation site: parse_header (src/parser.c:42)

  test/parser.test.ts > parser > parses header
    definitely lost: 1,024 bytes in 1 block, indirectly lost: 128 bytes in 2 blocks
    top allocation site: parse_header (src/parser.c:42)
`)
    expect(formatTestSummary(rows, { kinds: FAILING_KINDS, color: true })).toContain('\x1b[')
  })

  it('is empty when nothing of a failing kind leaked', () => {
    const reachable = { ...parserRun(), leaks: [parserRun().leaks[3]!] }
    const onlyReachable = groupRunRefs([{ id: 'a', file, name: 't', leaks: [0], run: reachable }], root)
    expect(summarizeTests(onlyReachable, FAILING_KINDS)).toHaveLength(1)
    expect(formatTestSummary(summarizeTests(onlyReachable, FAILING_KINDS), { kinds: FAILING_KINDS })).toBe('')
    expect(formatSummaryReport(onlyReachable, { kinds: FAILING_KINDS })).toBe('heapspec: no leaks in 1 run.\n')
  })

  it('counts a run made outside any test framework by its native test cases', () => {
    const rows = summarizeTests([{ tests: [], run: parserRun() }], FAILING_KINDS)
    expect(rows.map((r) => r.test)).toEqual([`${parserRun().program.command.join(' ')} > parses header`, parserRun().program.command.join(' ')])
  })
})

describe('GitHub annotations', () => {
  it('puts one ::error per leak of a failing kind at the first frame whose source is in the project', () => {
    const inProject = new Set(['src/parser.c', 'src/list.c'].map((f) => join(root, f)))
    const lines = githubAnnotations(recorded(), { root, kinds: FAILING_KINDS, exists: (p) => inProject.has(p) })
    expect(lines).toEqual([
      '::error file=src/list.c,line=17,title=heapspec%3A memory indirectly lost::128 bytes in 2 blocks are indirectly lost in test case "parses header" of build/parser_tests --all%0A  at node_new (src/list.c:17)%0A  by parse_header (src/parser.c:44)%0A  by run_case (tests/main.c:61)%0A  by main (tests/main.c:88)%0ATests: test/parser.test.ts > parser > leaks nothing; test/parser.test.ts > parser > parses header',
      // libc's strdup.c is not in the project: the annotation goes to the caller's line
      '::error file=src/parser.c,line=42,title=heapspec%3A memory definitely lost::1,024 bytes in 1 block is definitely lost in test case "parses header" of build/parser_tests --all%0A  at parse_header (src/parser.c:42)%0A  by run_case (tests/main.c:61)%0A  by main (tests/main.c:88)%0ATests: test/parser.test.ts > parser > leaks nothing; test/parser.test.ts > parser > parses header',
      // no frame in the project: annotated without a location, never dropped
      '::error title=heapspec%3A memory possibly lost::40 bytes in 1 block is possibly lost of build/parser_tests --all%0A  at std::__new_allocator<int>::allocate (/usr/include/c++/12/bits/new_allocator.h:137)%0A  by load_table (src/table.cpp:9)%0A  by main (tests/main.c:80)%0ATests: test/parser.test.ts > parser > leaks nothing',
    ])
  })

  it('names files relative to the workspace, and gives the same leak of several runs once', () => {
    const runs = [...recorded(), { tests: [], run: recorded()[0]!.run }]
    const lines = githubAnnotations(runs, { root, workspace: join(root, '..'), kinds: ['definite'], exists: () => true })
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(new RegExp(`^::error file=${basename(root)}/src/parser\\.c,line=42,`))
    expect(lines[0]).toContain('%0A(in 2 runs)%0A')
  })
})

describe('the report directory', () => {
  it('holds the HTML report by source file, the JSON summary, the saved runs and the text report', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'heapspec-report-')), 'report')
    const index = writeLeakReport(dir, recorded(), { root, kinds: FAILING_KINDS, saveRuns: true, text: 'the text\n' })
    expect(index).toBe(join(dir, 'index.html'))
    const html = readFileSync(index, 'utf8')
    // watermarks [1, 1024]: 1 KiB leaked is bad, 128 B notable, nothing (reachable only) fine
    expect(html).toContain('<tr class="high"><td><a href="files/src_parser.c.html">src/parser.c</a></td><td class="n">1,024 B / 1</td>')
    expect(html).toContain('<tr class="medium"><td><a href="files/src_list.c.html">src/list.c</a></td>')
    expect(html).toContain('<tr class="low"><td><a href="files/tests_main.c.html">tests/main.c</a></td>')
    expect(html).toContain('<td>test/parser.test.ts &gt; parser &gt; parses header</td>')
    const page = readFileSync(join(dir, 'files', 'src_parser.c.html'), 'utf8')
    expect(page).toContain('<h2><code>parse_header, line 42</code></h2>')
    expect(page).toContain('<li class="frame system">__strdup (./string/strdup.c:42)</li><li class="frame">parse_header (src/parser.c:42)</li>')
    const summary = JSON.parse(readFileSync(join(dir, 'leak-summary.json'), 'utf8')) as LeakSummaryJson
    expect(summary.files.map((f) => f.file)).toEqual(['src/parser.c', 'src/list.c', 'src/table.cpp', 'tests/main.c'])
    expect(summary.files[0]!.sites[0]).toMatchObject({ fn: 'parse_header', line: 42, testCases: ['parses header'] })
    // the JSON lists every row with its status: the reachable block no test checked too
    expect(summary.tests.map((t) => [t.test, t.status])).toEqual([
      ['test/parser.test.ts > parser > leaks nothing', 'failed'],
      ['test/parser.test.ts > parser > parses header', 'failed'],
      ['test/parser.test.ts (outside any test)', 'unchecked'],
    ])
    expect(parseSavedRuns(readFileSync(join(dir, 'heapspec-runs.json'), 'utf8'), 'x')).toEqual(recorded())
    expect(readFileSync(join(dir, 'leak-report.txt'), 'utf8')).toBe('the text\n')

    // the next report in the same place leaves no page of a file that no longer leaks
    const clean: RunJson = { ...parserRun(), leaks: parserRun().leaks.slice(0, 1) }
    writeLeakReport(dir, [{ tests: [], run: clean }], { root, kinds: FAILING_KINDS, watermarks: [1, 100] })
    expect(existsSync(join(dir, 'files', 'src_parser.c.html'))).toBe(false)
    expect(readFileSync(join(dir, 'index.html'), 'utf8')).toContain('<tr class="high"><td><a href="files/src_list.c.html">')
  })

  it('cannot be written: one error naming the directory and the cause', () => {
    const top = mkdtempSync(join(tmpdir(), 'heapspec-report-'))
    writeFileSync(join(top, 'file'), '')
    const write = () => writeLeakReport(join(top, 'file', 'report'), recorded(), { root, kinds: FAILING_KINDS })
    expect(write).toThrow(HeapspecError)
    expect(write).toThrow(`heapspec: cannot write the leak report to ${join(top, 'file', 'report')}: ENOTDIR: not a directory`)
  })
})

describe('one rule for which test answers for which leak (answers.ts)', () => {
  // parserRun() made in a beforeAll; a test allows test case "parses header" (toLeakAtMost within
  // its limits), another looks at the whole run's counts only (a snapshot)
  const tolerated = (): RecordedRun[] =>
    groupRunRefs(
      [
        { id: 'a', file, name: null, leaks: null, run: parserRun() },
        { id: 'a', file, name: 'parser > bounds the header leak', leaks: [0, 1], verdict: 'passed' },
        { id: 'a', file, name: 'parser > snapshot', leaks: null, verdict: 'seen' },
      ],
      root,
    )

  it('a leak the test allowed is no test leaking memory, and a ::warning; one no test checked is listed where its run was made', () => {
    const rows = summarizeTests(tolerated(), FAILING_KINDS)
    expect(rows.map((r) => [r.test, r.status])).toEqual([
      ['test/parser.test.ts (outside any test)', 'unchecked'],
      ['test/parser.test.ts > parser > bounds the header leak', 'tolerated'],
    ])
    expect(formatSummaryReport(tolerated(), { kinds: FAILING_KINDS })).toBe(`heapspec: leaks no test checked (definitely, indirectly or possibly lost), where their runs were made

  test/parser.test.ts (outside any test)
    possibly lost: 40 bytes in 1 block, still reachable: 1,024 bytes in 1 block
    top allocation site: load_table (src/table.cpp:9)

heapspec: 1 test allowed the leaks it checked (definitely, indirectly or possibly lost; see the leak report)
`)
    const lines = githubAnnotations(tolerated(), { root, kinds: FAILING_KINDS, exists: () => true })
    expect(lines.map((l) => l.slice(0, l.indexOf(' '))).sort()).toEqual(['::warning', '::warning', '::warning'])
    expect(lines.find((l) => l.includes('parse_header'))).toContain('%0AAllowed by: test/parser.test.ts > parser > bounds the header leak')
    expect(lines.find((l) => l.includes('load_table'))).toContain('%0AChecked by no test; made in: test/parser.test.ts (outside any test)')
  })

  it('a failing check wins over one that allowed the same leak: ::error, under the test that failed', () => {
    const runs = groupRunRefs(
      [
        { id: 'a', file, name: 'parser > allows', leaks: [1], verdict: 'passed', run: parserRun() },
        { id: 'a', file, name: 'parser > fails', leaks: [1], verdict: 'failed' },
      ],
      root,
    )
    const definite = githubAnnotations(runs, { root, kinds: ['definite'], exists: () => true })
    expect(definite).toHaveLength(1)
    expect(definite[0]).toMatch(/^::error .*%0ATests: test\/parser\.test\.ts > parser > fails$/)
  })
})

import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { githubAnnotations } from '../../src/report/annotations.js'
import type { LeakSummaryJson } from '../../src/report/json-summary.js'
import { formatErrorSummary, memoryErrorRows } from '../../src/report/memory-errors.js'
import { groupRunRefs, type RecordedRun } from '../../src/report/saved-runs.js'
import { formatSummaryReport } from '../../src/report/test-summary.js'
import { FAILING_KINDS, formatReport } from '../../src/report/text.js'
import { writeLeakReport } from '../../src/report/write-report.js'
import { errorsRun, parserRun } from '../matchers/run-fixture.js'

// errorsRun(): an error outside any test case (mismatched free in load_table), two in "parses
// header" (an invalid read twice, an invalid free), one on a thread in "parses empty". Every
// report lists the same ones, each at the bad call's line in the user's code.
const root = process.cwd()
const file = join(root, 'test', 'parser.test.ts')

function recorded(): RecordedRun[] {
  return groupRunRefs([{ id: 'a', file, name: 'parser > runs', leaks: null, run: errorsRun().toJSON() }], root)
}

const SUMMARY = [
  'heapspec: memory errors in 3 test cases (or outside any)',
  '',
  '  build/parser_tests --all > parses header (run in test/parser.test.ts)',
  '    invalid-read (2 times): Invalid read of size 4 at parse_header (src/parser.c:50)',
  "      Address 0x4a4f068 is 8 bytes after a block of size 32 alloc'd at parse_header (src/parser.c:41)",
  '    invalid-free: Invalid free() / delete / delete[] / realloc() at parse_header (src/parser.c:58)',
  "      Address 0x4a4f100 is 0 bytes inside a block of size 16 free'd at parse_header (src/parser.c:57)",
  "      Block was alloc'd at parse_header (src/parser.c:56)",
  '',
  '  build/parser_tests --all > parses empty (run in test/parser.test.ts)',
  '    invalid-write: Invalid write of size 1 at fill_row (src/table.cpp:30)',
  "      Address 0x0 is not stack'd, malloc'd or (recently) free'd",
  '',
  '  build/parser_tests --all (run in test/parser.test.ts)',
  '    mismatched-free: Mismatched free() / delete / delete [] at load_table (src/table.cpp:12)',
  '',
].join('\n')

describe('memory errors in the reports', () => {
  it('the summary lists each test case\'s errors in the order the test cases ran, then those outside any', () => {
    expect(formatErrorSummary(memoryErrorRows(recorded()))).toBe(SUMMARY)
    expect(formatErrorSummary(memoryErrorRows([{ tests: [], run: parserRun() }]))).toBe('')
  })

  it('a run outside a test framework names no test file; a saved run without per-test lists goes by each error\'s test', () => {
    const json = errorsRun().toJSON()
    for (const t of json.tests) delete t.errors
    const rows = memoryErrorRows([{ tests: [], run: json }])
    expect(rows.map((r) => [r.testCase, r.error.kind, r.error.count, r.files])).toEqual([
      [`${json.program.command.join(' ')} > parses header`, 'invalid-read', 2, []],
      [`${json.program.command.join(' ')} > parses header`, 'invalid-free', 1, []],
      [`${json.program.command.join(' ')} > parses empty`, 'invalid-write', 1, []],
      [json.program.command.join(' '), 'mismatched-free', 1, []],
    ])
  })

  it('leak-report.txt has the leaks, then the errors', () => {
    const text = formatSummaryReport(recorded(), { kinds: FAILING_KINDS })
    expect(text.slice(text.indexOf('heapspec: memory errors'))).toBe(SUMMARY)
    expect(text).toMatch(/^heapspec: leaks no test checked /)
  })

  it('annotates each error with an ::error at the bad call\'s line, before the leaks', () => {
    const inProject = new Set(['src/parser.c', 'src/table.cpp'].map((f) => join(root, f)))
    const lines = githubAnnotations(recorded(), { root, kinds: FAILING_KINDS, exists: (p) => inProject.has(p) })
    expect(lines.slice(0, 4)).toEqual([
      "::error file=src/parser.c,line=50,title=heapspec%3A memory error (invalid-read)::invalid-read (2 times): Invalid read of size 4 in build/parser_tests --all > parses header%0A  at parse_header (src/parser.c:50)%0A  by run_case (tests/main.c:61)%0A  by main (tests/main.c:88)%0A  Address 0x4a4f068 is 8 bytes after a block of size 32 alloc'd at parse_header (src/parser.c:41)%0ARun in: test/parser.test.ts",
      "::error file=src/parser.c,line=58,title=heapspec%3A memory error (invalid-free)::invalid-free: Invalid free() / delete / delete[] / realloc() in build/parser_tests --all > parses header%0A  at parse_header (src/parser.c:58)%0A  by run_case (tests/main.c:61)%0A  Address 0x4a4f100 is 0 bytes inside a block of size 16 free'd at parse_header (src/parser.c:57)%0A  Block was alloc'd at parse_header (src/parser.c:56)%0ARun in: test/parser.test.ts",
      "::error file=src/table.cpp,line=30,title=heapspec%3A memory error (invalid-write)::invalid-write: Invalid write of size 1 in build/parser_tests --all > parses empty%0A  at fill_row (src/table.cpp:30)%0A  Address 0x0 is not stack'd, malloc'd or (recently) free'd%0ARun in: test/parser.test.ts",
      '::error file=src/table.cpp,line=12,title=heapspec%3A memory error (mismatched-free)::mismatched-free: Mismatched free() / delete / delete [] in build/parser_tests --all%0A  at load_table (src/table.cpp:12)%0A  by main (tests/main.c:80)%0ARun in: test/parser.test.ts',
    ])
    // then the leaks, as before
    expect(lines.slice(4).every((l) => l.includes('title=heapspec%3A memory ') && l.includes(' lost'))).toBe(true)
  })

  it('the HTML report links a page of the errors by source line, the JSON summary lists them; a clean report leaves no stale page', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'heapspec-report-')), 'report')
    writeLeakReport(dir, recorded(), { root, kinds: FAILING_KINDS })
    expect(readFileSync(join(dir, 'index.html'), 'utf8')).toContain('<a href="memory-errors.html">4 memory errors</a> in 3 test cases (or outside any)')
    const page = readFileSync(join(dir, 'memory-errors.html'), 'utf8')
    const places = [...page.matchAll(/<h2><code>([^<]*)<\/code><\/h2>/g)].map((m) => m[1])
    expect(places).toEqual(['src/parser.c, line 50', 'src/parser.c, line 58', 'src/table.cpp, line 12', 'src/table.cpp, line 30'])
    expect(page).toContain('<strong>invalid-read (2 times): Invalid read of size 4</strong> in <code>build/parser_tests --all &gt; parses header</code> <span class="muted">(run in test/parser.test.ts)</span>')
    expect(page).toContain('<p>Block was alloc&#39;d at</p>\n<ol class="stack"><li class="frame">parse_header (src/parser.c:56)</li><li class="frame">run_case (tests/main.c:61)</li></ol>')
    const summary = JSON.parse(readFileSync(join(dir, 'leak-summary.json'), 'utf8')) as LeakSummaryJson
    expect(summary.memoryErrors.map((e) => [e.testCase, e.kind, e.count, e.site?.file, e.site?.line])).toEqual([
      ['build/parser_tests --all > parses header', 'invalid-read', 2, 'src/parser.c', 50],
      ['build/parser_tests --all > parses header', 'invalid-free', 1, 'src/parser.c', 58],
      ['build/parser_tests --all > parses empty', 'invalid-write', 1, 'src/table.cpp', 30],
      ['build/parser_tests --all', 'mismatched-free', 1, 'src/table.cpp', 12],
    ])
    writeLeakReport(dir, [{ tests: [], run: parserRun() }], { root, kinds: FAILING_KINDS })
    expect(existsSync(join(dir, 'memory-errors.html'))).toBe(false)
    expect(readFileSync(join(dir, 'index.html'), 'utf8')).not.toContain('memory-errors.html')
  })

  it('the run\'s text report (heapspec run) tells each error as memcheck does, with its test case, and counts them per test case', () => {
    const text = formatReport(errorsRun().toJSON())
    expect(text.split('\n').slice(1, 16)).toEqual([
      '',
      'mismatched-free: Mismatched free() / delete / delete []',
      '    at load_table (src/table.cpp:12)',
      '    by main (tests/main.c:80)',
      '',
      'invalid-read (2 times): Invalid read of size 4 (in test case "parses header")',
      '    at parse_header (src/parser.c:50)',
      '    by run_case (tests/main.c:61)',
      '    by main (tests/main.c:88)',
      '    by __libc_start_call_main (./csu/../sysdeps/nptl/libc_start_call_main.h:58)',
      `    by _start (${join(root, 'build', 'parser_tests')})`,
      "  Address 0x4a4f068 is 8 bytes after a block of size 32 alloc'd",
      '    at malloc (/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)',
      '    by parse_header (src/parser.c:41)',
      '    by run_case (tests/main.c:61)',
    ])
    expect(text).toContain('  parses header: 5 allocs, 2 frees, 1,248 bytes allocated, 1,152 bytes lost, 2 memory errors\n')
    expect(text).toContain('  parses empty: 2 allocs, 2 frees, 96 bytes allocated, 0 bytes lost, 1 memory error\n')
    expect(text).toContain('  parses footer: 0 allocs, 0 frees, 0 bytes allocated, 0 bytes lost\n')
  })
})

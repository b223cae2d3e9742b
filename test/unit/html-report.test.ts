import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { emptyLeakSummary, type RunJson } from '../../src/model/types.js'
import { FAILING_KINDS } from '../../src/report/text.js'
import { writeLeakReport } from '../../src/report/write-report.js'

// The HTML report of runs made outside a test framework (`heapspec run --out`, `heapspec report`):
// its index counts what its Tests table lists, one leak seen by two runs reads as one leak in two
// runs, each page says what the kinds and the bars mean, and a site shows lines around its own.
const root = mkdtempSync(join(tmpdir(), 'heapspec-html-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
mkdirSync(join(root, 'src'))
writeFileSync(join(root, 'src', 'leak.c'), ['#include <stdlib.h>', '', 'char *make(void)', '{', '    return malloc(6);', '}', '', 'int main(void) { make(); }'].join('\n'))

/** `./leak` leaking 6 bytes in one block from make (src/leak.c:5), in test case `leaks`. */
function leakRun(): RunJson {
  const leaked = emptyLeakSummary()
  leaked.definite = { bytes: 6, blocks: 1 }
  return {
    schema: 1,
    backend: 'preload',
    program: { command: ['./leak'], exitCode: 0, signal: null },
    totals: { allocations: 1, frees: 0, bytesAllocated: 6 },
    inUseAtExit: { bytes: 6, blocks: 1 },
    leakSummary: leaked,
    leaks: [{ kind: 'definite', bytes: 6, blocks: 1, test: 'leaks', stack: [{ fn: 'make', file: 'src/leak.c', line: 5, object: './leak' }, { fn: 'main', file: 'src/leak.c', line: 8, object: './leak' }] }],
    tests: [{ name: 'leaks', allocations: 1, frees: 0, bytesAllocated: 6, leakSummary: leaked }],
    errors: [],
  }
}

function report(runs: RunJson[]): { index: string; page: string } {
  const dir = join(root, `report-${runs.length}`)
  writeLeakReport(dir, runs.map((run) => ({ tests: [], run })), { root, kinds: FAILING_KINDS })
  return { index: readFileSync(join(dir, 'index.html'), 'utf8'), page: readFileSync(join(dir, 'files', 'src_leak.c.html'), 'utf8') }
}

describe('the HTML report of saved runs', () => {
  it('counts in the Source files table the tests its Tests table lists', () => {
    const { index } = report([leakRun()])
    expect(index).toContain('<tr class="medium"><td>./leak &gt; leaks</td>')
    // File, four kinds, Sites 1, Tests 1
    expect(index).toMatch(/<a href="files\/src_leak\.c\.html">src\/leak\.c<\/a><\/td>(<td[^>]*>[^<]*<\/td>){4}<td class="n">1<\/td><td class="n">1<\/td><\/tr>/)
  })

  it('shows one leak seen by two runs as that leak in 2 runs, not as one twice its size', () => {
    const { page } = report([leakRun(), leakRun()])
    expect(page).toContain('<strong>6 bytes in 1 block definitely lost</strong> in &quot;leaks&quot;, in 2 runs')
    expect(page).not.toContain('12 bytes in 2 blocks definitely lost</strong>')
    expect(report([leakRun()]).page).not.toContain('in 1 runs')
  })

  it('explains the kinds and the bars on every page', () => {
    const { index, page } = report([leakRun()])
    for (const html of [index, page]) {
      expect(html).toContain('<dl class="legend">')
      expect(html).toContain('<dt>definitely lost</dt><dd>no pointer to the block is left anywhere</dd>')
      expect(html).toContain('<dt>still reachable</dt><dd>still pointed to when the program ended (reported, not failing)</dd>')
      expect(html).toContain('1024 bytes or more')
    }
  })

  it('gives an allocation site the lines around it, its own marked', () => {
    const { page } = report([leakRun()])
    expect(page).toContain(
      ['<pre class="source"><span class="line">3 | char *make(void)</span>', '<span class="line">4 | {</span>', '<span class="line site">5 |     return malloc(6);</span>', '<span class="line">6 | }</span>', '<span class="line">7 | </span></pre>'].join('\n'),
    )
  })
})

import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import type { RunJson } from '../../src/model/types.js'
import { program } from '../support/debugee.js'

// The preload interposer scans the heap itself (src/capture/preload/scan.c); HEAPSPEC_SCAN=image
// has it send memory images for the host's scan (src/capture/memory-image.ts, src/model/leak-scan.ts),
// the one the GDB backend's images go through. The two must say the same of every block: each
// program here runs both ways in the same test, and every loss record, test case and figure must be
// equal, as well as what the program itself printed and how it ended.

/** What both scans must agree on: every figure and every loss record, with its test case and site. */
function figures(run: RunJson): unknown {
  return {
    program: run.program,
    totals: run.totals,
    inUseAtExit: run.inUseAtExit,
    leakSummary: run.leakSummary,
    tests: run.tests.map((t) => [t.name, t.allocations, t.frees, t.bytesAllocated, t.leakSummary]),
    leaks: run.leaks.map((l) => `${l.kind} ${l.bytes}/${l.blocks} ${l.test} ${l.stack.map((f) => `${f.fn}@${f.file?.split('/').at(-1)}:${f.line}`).join(' < ')}`).sort(),
    incomplete: run.incomplete,
  }
}

async function bothScans(command: string[], options: { tests?: string; stdin?: string; timeout?: number } = {}): Promise<[unknown, unknown]> {
  const runs = []
  // values of one length: a program that copies its environment (perl's %ENV) allocates alike
  for (const scan of ['image', 'local']) {
    const run = await runNative(command, {
      backend: 'preload',
      timeout: options.timeout ?? 120,
      ...(options.tests ? { tests: options.tests } : {}),
      // perl's hashes are seeded at random unless told
      env: { ...process.env, HEAPSPEC_SCAN: scan, PERL_HASH_SEED: '0', PERL_PERTURB_KEYS: '0' },
      ...(options.stdin !== undefined ? { stdio: { stdin: options.stdin } } : {}),
    })
    expect(run.json.backend).toBe('preload')
    // GoogleTest prints how long each test took; field/thread-arena, its blocks' addresses
    const untimed = (text: string): string => text.replace(/\(\d+ ms( total)?\)/g, '(N ms$1)').replace(/0x[0-9a-f]+/g, '0x')
    runs.push({ ...(figures(run.json) as object), stdout: untimed(run.stdout), stderr: run.stderr })
  }
  return [runs[0], runs[1]]
}

const DEBUGEE: [string, string[]][] = [
  ['tests', []],
  ['indirect', []],
  ['possible', []],
  ['reachable', []],
  ['threads', []],
  ['cxx', []],
  ['libc', []],
  ['verdicts', []],
  ['verdicts-cxx', []],
  ['crash', []],
  ['field/stale', []],
  ['field/stale-threads', []],
  ['field/thread-arena', []],
  ['field/own-mapping', []],
  ['field/realloc-stale', []],
  ['field/freed-reuse', []],
  ['field/pvalloc', []],
  ['field/dlerror', []],
  ['field/many-blocks', ['20000']],
  ['field/many-tests', ['300']],
  // a test case still running at the end: its blocks go to the host one by one, not grouped
  ['tests-misordered', []],
  ['tests-repeated', []],
]

describe('the scan in the process says what the host\'s scan of an image says', () => {
  it.each(DEBUGEE)('debugee/%s %j', async (name, args) => {
    const [image, scan] = await bothScans([program(name), ...args])
    expect(scan).toEqual(image)
  })

  it('debugee/hang, stopped by the timeout: the scan runs in the interposer\'s signal handler', async () => {
    const [image, scan] = await bothScans([program('hang')], { timeout: 1 })
    expect(scan).toEqual(image)
    expect((scan as { leakSummary: unknown }).leakSummary).toMatchObject({ definite: { bytes: 32, blocks: 1 } })
  })

  it('a GoogleTest suite without the listener, its tests found by --tests', async () => {
    const [image, scan] = await bothScans([program('gtest-plain')], { tests: '.' })
    expect(scan).toEqual(image)
  })

  const dir = mkdtempSync(join(tmpdir(), 'heapspec-scan-'))
  const json = join(dir, 'in.json')
  writeFileSync(json, JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) }))
  const sql = 'create table t(a, b); insert into t values (1, "one"), (2, "two"); select b from t order by a desc;'
  it.each([
    ['jq', ['-c', '[.items[] | select(.id % 7 == 0) | .name]', json]],
    ['sort', ['-r', json]],
    ['sed', ['-e', 's/item/thing/g', json]],
    ['sqlite3', [':memory:', sql]],
    ['perl', ['-e', 'my %h = map { $_ => [$_] } 1..500; print scalar(keys %h), "\\n"']],
    ['git', ['--version']],
  ])('/usr/bin/%s %j', async (name, args) => {
    const [image, scan] = await bothScans([`/usr/bin/${name}`, ...args])
    expect(scan).toEqual(image)
  })
})

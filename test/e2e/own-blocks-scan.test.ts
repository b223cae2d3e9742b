import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import type { RunJson } from '../../src/model/types.js'
import { program, ROOT } from '../support/debugee.js'

// At a test end the preload interposer judges the test case's own live blocks from the words that
// point into them (src/capture/preload/scan.c's scan_own) rather than sorting and marking the whole
// heap; where a word in the heap points into them, it scans the whole heap as before.
// HEAPSPEC_SCAN=whole has it scan the whole heap at every test end: both must say the same of every
// test case, and the same as memcheck.

const CLI = join(ROOT, 'dist', 'src', 'cli.js')

function perTest(run: RunJson): unknown {
  return run.tests.map((t) => [t.name, t.allocations, t.frees, t.leakSummary])
}

function figures(run: RunJson): unknown {
  return {
    program: run.program,
    totals: run.totals,
    leakSummary: run.leakSummary,
    tests: perTest(run),
    leaks: run.leaks.map((l) => `${l.kind} ${l.bytes}/${l.blocks} ${l.test} ${l.stack.map((f) => `${f.fn}:${f.line}`).join(' < ')}`).sort(),
  }
}

async function cli(scan: string): Promise<{ run: RunJson; stdout: string; stderr: string; exitCode: number | undefined }> {
  const json = join(mkdtempSync(join(tmpdir(), 'heapspec-own-scan-')), 'run.json')
  const r = await execa('node', [CLI, 'run', '--backend', 'preload', '--json', json, '--', program('field/test-ends')], {
    reject: false,
    env: { HEAPSPEC_DEBUG: '1', HEAPSPEC_SCAN: scan },
  })
  return { run: JSON.parse(readFileSync(json, 'utf8')) as RunJson, stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode }
}

describe('a test end judged by its own blocks says what the whole scan and memcheck say', () => {
  it('debugee/field/test-ends: held by the stack, a global, a middle pointer, one another, the fixture, a stale word, a thread, a big block', async () => {
    const memcheck = await runNative([program('field/test-ends')], { backend: 'valgrind' })
    const whole = await cli('whole')
    // the same run three times: a verdict that varies is a bug (one case holds its block on another thread's stack)
    for (let i = 0; i < 3; i++) {
      const local = await cli('local')
      expect(local.exitCode).toBe(1) // leaks found; the program itself exits 0
      expect(local.run.program.exitCode).toBe(0)
      expect(local.stdout).toBe('test-ends: 64 fixture blocks')
      // into_fixture (a live block of the fixture points into its block) and many_lost (1,100
      // blocks) go to the whole scan; the other 10 are judged by their own blocks, stale_word's and
      // big_holds' too: the words in the heap that point into their blocks lie outside every live
      // block (stale_word's in its freed holder), where the whole scan never reads
      expect(local.stderr).toContain("; 12 test ends and the end scanned in the process (10 of them by the test case's own blocks alone), 0 test-end images")
      expect(figures(local.run)).toEqual(figures(whole.run))
    }
    expect(whole.stderr).toContain("; 12 test ends and the end scanned in the process (0 of them by the test case's own blocks alone), 0 test-end images")
    expect(perTest(whole.run)).toEqual(perTest(memcheck.json))
    const kinds = (r: RunJson) => r.tests.map((t) => [t.name, ...(['definite', 'indirect', 'possible', 'reachable'] as const).map((k) => `${t.leakSummary[k].bytes}/${t.leakSummary[k].blocks}`)])
    expect(kinds(whole.run)).toEqual([
      ['stack_keeps', '0/0', '0/0', '0/0', '40/1'],
      ['global_keeps', '48/1', '0/0', '0/0', '0/0'], // lost at exit: zero_size overwrites the global
      ['middle', '0/0', '0/0', '64/1', '0/0'],
      ['chain', '16/1', '32/2', '0/0', '0/0'],
      ['cycle', '16/1', '16/1', '0/0', '0/0'],
      ['into_fixture', '0/0', '0/0', '0/0', '56/1'],
      ['stale_word', '24/1', '0/0', '0/0', '0/0'],
      ['thread_stack', '0/0', '0/0', '0/0', '72/1'],
      ['big_holds', '0/0', '0/0', '0/0', '1048664/2'],
      ['big_lost', '1048576/1', '0/0', '0/0', '0/0'],
      ['many_lost', '8800/1100', '0/0', '0/0', '0/0'],
      ['zero_size', '0/1', '0/0', '0/0', '0/1'],
    ])
  })

  it('10,000 test cases: each leaky end judged by its block alone, and the lines reach the host in a few big writes', async () => {
    const json = join(mkdtempSync(join(tmpdir(), 'heapspec-own-scan-')), 'run.json')
    const r = await execa('node', [CLI, 'run', '--backend', 'preload', '--json', json, '--', program('field/many-tests')], {
      reject: false,
      env: { HEAPSPEC_DEBUG: '1' },
    })
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain("; 1000 test ends and the end scanned in the process (1000 of them by the test case's own blocks alone), 0 test-end images")
    // a boundary flushes at most every 10 ms: one write each was 20,000 writes, each waking the host
    const reads = Number(/its lines in (\d+) reads;/.exec(r.stderr)?.[1])
    expect(reads).toBeGreaterThan(0)
    expect(reads).toBeLessThan(1000)
    const run = JSON.parse(readFileSync(json, 'utf8')) as RunJson
    expect(run.tests).toHaveLength(10_000)
    expect(run.tests.filter((t) => t.leakSummary.definite.blocks === 1).map((t) => t.name)).toEqual(Array.from({ length: 1000 }, (_, i) => `case_${i * 10}`))
    expect(run.leakSummary.definite).toEqual({ bytes: 16_000, blocks: 1000 })
  })

  it.each([
    ['tests', [], {}],
    ['verdicts', [], {}],
    ['verdicts-cxx', [], {}],
    ['errors-tests', [], {}],
    ['tests-repeated', [], {}],
    ['tests-misordered', [], {}],
    ['field/many-tests', ['300', '2000'], {}],
    ['gtest-plain', [], { tests: '.' }],
  ] as [string, string[], { tests?: string }][])('debugee/%s %j', async (name, args, options) => {
    const runs = []
    for (const scan of ['whole', 'local']) {
      const run = await runNative([program(name), ...args], { backend: 'preload', ...options, env: { ...process.env, HEAPSPEC_SCAN: scan } })
      runs.push({ ...(figures(run.json) as object), stdout: run.stdout.replace(/\(\d+ ms( total)?\)/g, '(N ms$1)'), stderr: run.stderr })
    }
    expect(runs[1]).toEqual(runs[0])
  })
})

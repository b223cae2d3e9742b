import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import type { RunJson } from '../../src/model/types.js'
import { program } from '../support/debugee.js'
import { peakSites } from '../support/test-cases.js'

// Peaks of live heap, on the backends that see every block (preload keeps them in the
// interposer, gdb's come from its events), held to debugee/peaks.c's construction and to massif's
// whole-run peak (mem_heap_B with --peak-inaccuracy=0.0: its exact peak).

const PEAKS_C = 'debugee/peaks.c'
const at = (line: number): string => `${PEAKS_C}:${line}`
const MAKE_CHUNK = at(30)
const MAKE_TAIL = at(37)

/** The peaks of a run, sites by first frame, as two backends can agree on them. */
function peaksOf(run: RunJson): unknown {
  return {
    run: run.peak && { bytes: run.peak.bytes, sites: peakSites(run.peak.sites) },
    tests: run.tests.map((t) => ({ name: t.name, bytes: t.peak?.bytes, heapBytes: t.peak?.heapBytes, sites: t.peak && peakSites(t.peak.sites) })),
  }
}

/** Every peak field, whole stacks and all, without the raw program counters. */
function everything(run: RunJson): unknown {
  return JSON.parse(JSON.stringify({ peak: run.peak, tests: run.tests.map((t) => t.peak), heapSeries: run.heapSeries }, (key, value: unknown) => (key === 'pc' ? undefined : value)))
}

/** massif's peak of the whole heap for `command`: the largest mem_heap_B of its snapshots. */
async function massifPeak(command: string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-massif-'))
  try {
    const out = join(dir, 'massif.out')
    await execa('valgrind', ['--tool=massif', '--peak-inaccuracy=0.0', '--heap-admin=0', `--massif-out-file=${out}`, ...command], { stdio: 'ignore' })
    const heaps = [...readFileSync(out, 'utf8').matchAll(/^mem_heap_B=(\d+)$/gm)].map((m) => Number(m[1]))
    if (heaps.length === 0) throw new Error(`massif wrote no snapshot for ${command.join(' ')}`)
    return Math.max(...heaps)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe.each(['preload', 'gdb'] as const)('peaks on the %s backend', (backend) => {
  it("debugee/peaks.c: each test case's own peak and the heap's, as constructed, with the sites live at each", async () => {
    const run = await runNative([program('peaks')], { backend })
    expect(run.stdout).toBe('peaks: done\n')
    expect(run.json.program.exitCode).toBe(0)
    expect(peaksOf(run.json)).toEqual({
      run: {
        bytes: 1048576,
        sites: [
          { bytes: 786432, blocks: 3, at: MAKE_CHUNK },
          { bytes: 262144, blocks: 1, at: MAKE_TAIL },
        ],
      },
      tests: [
        {
          name: 'four_blocks',
          bytes: 1048576,
          heapBytes: 1048576,
          sites: [
            { bytes: 786432, blocks: 3, at: MAKE_CHUNK },
            { bytes: 262144, blocks: 1, at: MAKE_TAIL },
          ],
        },
        // the fixture (100000 bytes, made before) counts in the heap's peak, not in the test's own
        {
          name: 'with_fixture',
          bytes: 5000,
          heapBytes: 105000,
          sites: [
            { bytes: 3000, blocks: 1, at: MAKE_CHUNK },
            { bytes: 2000, blocks: 1, at: MAKE_TAIL },
          ],
        },
        // a realloc's old block is freed before its new one counts: 4000, never 2000 + 4000
        { name: 'grows', bytes: 4000, heapBytes: 4000, sites: [{ bytes: 4000, blocks: 1, at: at(63) }] },
      ],
    })
    // whole stacks: the caller chain up to main
    expect(run.json.peak!.sites[0]!.stack.map((f) => `${f.fn}:${f.line}`)).toEqual(['make_chunk:30', 'four_blocks:45', 'main:101'])
    // one point per event (24 of them: 12 allocations, 12 frees), and each test case's span
    expect(run.json.heapSeries).toEqual({
      points: [
        [1, 262144], [2, 524288], [3, 786432], [4, 1048576], [5, 786432], [6, 524288], [7, 262144], [8, 0],
        [9, 100000], [10, 104096], [11, 100000], [12, 103000], [13, 105000], [14, 102000], [15, 100000], [16, 0],
        [17, 1000], [18, 0], [19, 2000], [20, 0], [21, 4000], [22, 0], [23, 4096], [24, 0],
      ],
      spans: [
        { test: 0, from: 0, to: 8 },
        { test: 1, from: 9, to: 15 },
        { test: 2, from: 16, to: 22 },
      ],
    })
  })

  it('peaks churn: a peak followed by 20000 events keeps its sites, 5000 old blocks freed after one too; the series stays within 512 points', async () => {
    const run = await runNative([program('peaks'), 'churn'], { backend })
    expect(run.json.program.exitCode).toBe(0)
    expect(peaksOf(run.json)).toEqual({
      run: { bytes: 100000, sites: [{ bytes: 100000, blocks: 1, at: MAKE_CHUNK }] },
      tests: [
        {
          name: 'churn',
          bytes: 74850,
          heapBytes: 74850,
          sites: [
            { bytes: 37500, blocks: 150, at: MAKE_TAIL },
            { bytes: 37350, blocks: 150, at: MAKE_CHUNK },
          ],
        },
        // 5000 frees of blocks older than the peak after it: the interposer's log of them grows
        { name: 'wide', bytes: 80000, heapBytes: 80000, sites: [{ bytes: 80000, blocks: 5000, at: MAKE_TAIL }] },
        { name: 'after_churn', bytes: 100000, heapBytes: 100000, sites: [{ bytes: 100000, blocks: 1, at: MAKE_CHUNK }] },
      ],
    })
    const series = run.json.heapSeries!
    // 30602 events: six merges of 512 points into 256 leave 479 points 64 events apart
    expect(series.points).toHaveLength(479)
    expect(series.points.slice(0, 3)).toEqual([
      [1, 100 * 64 + (63 * 64) / 2],
      [65, 100 * 128 + (127 * 128) / 2],
      [129, 100 * 192 + (191 * 192) / 2],
    ])
    expect(series.points.every(([x], i) => x === 1 + 64 * i)).toBe(true)
    expect(Math.max(...series.points.map(([, bytes]) => bytes))).toBe(100000)
    expect(series.spans).toEqual([
      { test: 0, from: 0, to: 20600 },
      { test: 1, from: 20600, to: 30600 },
      { test: 2, from: 30600, to: 30602 },
    ])
  })
})

describe('peaks beside each other and beside massif', () => {
  it.each([
    ['peaks', [program('peaks')]],
    ['peaks churn', [program('peaks'), 'churn']],
  ])('%s: preload (counts, or every event) and gdb give the same peaks, sites (whole stacks) and series', async (_name, command) => {
    const [preload, gdb] = [await runNative(command, { backend: 'preload' }), await runNative(command, { backend: 'gdb' })]
    expect(everything(preload.json)).toEqual(everything(gdb.json))
    // with memdump.txt the interposer sends every event and the host keeps the peaks, as for gdb
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-memdump-'))
    try {
      const everyEvent = await runNative(command, { backend: 'preload', memdump: join(dir, 'memdump.txt') })
      expect(everything(everyEvent.json)).toEqual(everything(preload.json))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.each(['peaks', 'tests', 'verdicts', 'cxx', 'libc', 'realloc', 'aligned'])("%s: the run's peak is massif's, on preload and on gdb", async (name) => {
    const command = [program(name)]
    const [reference, preload, gdb] = [await massifPeak(command), await runNative(command, { backend: 'preload' }), await runNative(command, { backend: 'gdb' })]
    expect({ preload: preload.json.peak?.bytes, gdb: gdb.json.peak?.bytes }).toEqual({ preload: reference, gdb: reference })
    expect(peaksOf(preload.json)).toEqual(peaksOf(gdb.json))
  })

  it('debugee/tests.c, with a helper thread: the same peaks on every one of 20 preload runs, and gdb\'s', async () => {
    const gdb = peaksOf((await runNative([program('tests')], { backend: 'gdb' })).json)
    for (let i = 0; i < 20; i++) {
      const run = await runNative([program('tests')], { backend: 'preload' })
      expect({ run: i, peaks: peaksOf(run.json) }).toEqual({ run: i, peaks: gdb })
    }
  })
})

describe('peaks on the valgrind backend', () => {
  it('are left out: memcheck keeps no high-water mark (its xtree has current and total bytes only)', async () => {
    const run = await runNative([program('peaks')], { backend: 'valgrind' })
    expect(run.stdout).toBe('peaks: done\n')
    expect(run.json.tests.map((t) => t.name)).toEqual(['four_blocks', 'with_fixture', 'grows'])
    expect({ peak: run.json.peak, series: run.json.heapSeries, tests: run.json.tests.map((t) => t.peak) }).toEqual({
      peak: undefined,
      series: undefined,
      tests: [undefined, undefined, undefined],
    })
  })
})

/**
 * npm run bench: the allocation-heavy debugee program, in one go, natively, under GDB with
 * do-nothing breakpoints (the floor), under each heapspec backend and under plain memcheck.
 * Prints events per second and each one's slowdown against the native run.
 *
 * Two sizes: the GDB rows stop at every event, so they run BENCH_ITERATIONS (20,000); that is
 * far too little work to time the program natively or under the preload backend (a few
 * milliseconds), so those run BENCH_LARGE_ITERATIONS (20,000,000), with the valgrind backend
 * beside them on the same work.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { runNative, runNode } from '../../src/index.js'
import { ROOT, timed } from './measure.js'
import { addonRows } from './node-addon.js'

const iterations = Number(process.env.BENCH_ITERATIONS ?? 20_000)
const largeIterations = Number(process.env.BENCH_LARGE_ITERATIONS ?? 20_000_000)
const bench = join(ROOT, 'debugee', 'build', 'bench')

/** Runs heapspec and returns its allocation events, checking that it saw every one. */
async function best(fn: () => Promise<unknown>, times = 3): Promise<number> {
  let fastest = Infinity
  for (let i = 0; i < times; i++) fastest = Math.min(fastest, await timed(fn))
  return fastest
}

async function heapspec(backend: 'gdb' | 'valgrind' | 'preload', n: number): Promise<number> {
  const run = await runNative([bench, String(n)], { backend })
  const { allocations, frees } = run.json.totals
  if (allocations !== n || frees !== n) throw new Error(`bench: the ${backend} backend saw ${allocations} allocations and ${frees} frees, not ${n} each`)
  return allocations + frees
}

function table(title: string, events: number, rows: [string, number][], relative: [string, number][]): void {
  console.log(`\n${title}: ${events.toLocaleString('en-US')} allocation events (allocations + frees)\n`)
  console.log(`${'run'.padEnd(38)} ${'seconds'.padStart(8)} ${'events/s'.padStart(12)}${relative.map(([name]) => name.padStart(13)).join('')}`)
  for (const [name, seconds] of rows) {
    const ratios = relative.map(([, base]) => `${(seconds / base).toFixed(seconds / base < 0.1 ? 3 : 1)}x`.padStart(13)).join('')
    console.log(`${name.padEnd(38)} ${seconds.toFixed(2).padStart(8)} ${Math.round(events / seconds).toLocaleString('en-US').padStart(12)}${ratios}`)
  }
}

async function main(): Promise<void> {
  // warm-up: the preload backend builds its interposer on first use (cached afterwards)
  await runNative([bench, '10'], { backend: 'preload' })

  const argv = [bench, String(iterations)]
  let events = 0
  const small: [string, number][] = []
  small.push(['native', await timed(() => execa(bench, [String(iterations)]))])
  // A stop costs what the kernel's ptrace round trip costs at that moment, which on a shared
  // machine varies by tens of percent from run to run: the GDB rows are the best of three.
  small.push(['gdb, do-nothing breakpoints (floor)', await best(() => execa('gdb', ['-nx', '-q', '-batch', '-x', join(ROOT, 'test', 'bench', 'floor.py'), '--args', ...argv]))])
  small.push(['heapspec --backend gdb', await best(async () => (events = await heapspec('gdb', iterations)))])
  small.push(['heapspec --backend valgrind', await timed(() => heapspec('valgrind', iterations))])
  small.push(['valgrind --leak-check=full (plain)', await timed(() => execa('valgrind', ['-q', '--leak-check=full', ...argv]))])
  small.push(['heapspec --backend preload', await timed(() => heapspec('preload', iterations))])
  table(`bench: debugee/build/bench ${iterations.toLocaleString('en-US')}`, events, small, [
    ['vs native', small[0]![1]],
    ['vs floor', small[1]![1]],
  ])

  let largeEvents = 0
  const large: [string, number][] = []
  large.push(['native', await timed(() => execa(bench, [String(largeIterations)]))])
  large.push(['heapspec --backend preload', await timed(async () => (largeEvents = await heapspec('preload', largeIterations)))])
  large.push(['heapspec --backend valgrind', await timed(() => heapspec('valgrind', largeIterations))])
  table(
    `bench: debugee/build/bench ${largeIterations.toLocaleString('en-US')} (the native and preload rows above are too short to time)`,
    largeEvents,
    large,
    [
      ['vs native', large[0]![1]],
      ['vs valgrind', large[2]![1]],
    ],
  )
  const [native, preload, valgrind] = large.map(([, seconds]) => seconds) as [number, number, number]
  console.log(`\npreload: ${(preload / native).toFixed(1)}x native, ${(valgrind / preload).toFixed(0)}x faster than the valgrind backend (targets: at most 3x native, at least 10x faster)`)

  // Node itself: what a runNode() costs before the script does anything (an addon test pays this).
  const script = join(mkdtempSync(join(tmpdir(), 'heapspec-bench-')), 'empty.mjs')
  writeFileSync(script, '')
  const node: [string, number][] = []
  node.push(['node (native)', await timed(() => execa(process.execPath, [script]))])
  node.push(['runNode, preload (auto)', await timed(() => runNode(script, { backend: 'preload' }))])
  node.push(['runNode, gdb (objects: .node files)', await timed(() => runNode(script, { backend: 'gdb' }))])
  node.push(['runNode, valgrind', await timed(() => runNode(script, { backend: 'valgrind' }))])
  console.log(`\nnode start-up, an empty script\n\n${'run'.padEnd(38)} ${'seconds'.padStart(8)} ${'vs native'.padStart(13)}`)
  for (const [name, seconds] of node) console.log(`${name.padEnd(38)} ${seconds.toFixed(2).padStart(8)} ${`${(seconds / node[0]![1]).toFixed(0)}x`.padStart(13)}`)

  await addonRows()
}

await main()

/**
 * The runNode rows of `npm run bench`: debugee/addon's script (a C++ N-API addon; its `churn` test
 * case makes and deletes N entries, 4 allocations each) natively and under each backend, on the
 * same script. The GDB backend stops at every event the addon makes, and memcheck runs Node tens of
 * times slower, so those two run a smaller N (against a native run of the same N).
 */
import { join } from 'node:path'
import { execa } from 'execa'
import { runNode } from '../../src/index.js'
import { ROOT, timed } from './measure.js'

const SCRIPT = join(ROOT, 'debugee', 'addon', 'entries.mjs')

/** runNode on the script, checking that the churn test case saw every one of its allocations and frees. */
async function churn(backend: 'preload' | 'gdb' | 'valgrind', entries: number): Promise<void> {
  const run = await runNode(SCRIPT, { backend, args: [String(entries)] })
  const test = run.test('churn').totals
  if (test.allocations !== 4 * entries || test.frees !== 4 * entries) {
    throw new Error(`bench: runNode under ${backend} saw ${test.allocations} allocations and ${test.frees} frees in churn, not ${4 * entries} each`)
  }
  if (run.stdout !== `entries: done (${entries} churned)\n`) throw new Error(`bench: the script printed ${JSON.stringify(run.stdout)} under ${backend}`)
}

function median(values: number[]): number {
  return [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!
}

export async function addonRows(): Promise<void> {
  const large = Number(process.env.BENCH_ADDON_ENTRIES ?? 250_000)
  const small = Number(process.env.BENCH_ADDON_GDB_ENTRIES ?? 2_000)
  const rows: [string, number, number][] = []
  // a third of a second each: the median of three, taken in turns, so a moment's load on the
  // machine moves neither figure alone
  const natives: number[] = []
  const preloads: number[] = []
  for (let i = 0; i < 3; i++) {
    natives.push(await timed(() => execa(process.execPath, [SCRIPT, String(large)])))
    preloads.push(await timed(() => churn('preload', large)))
  }
  const native = median(natives)
  rows.push(['node (native)', large, native])
  rows.push(['runNode, preload (auto)', large, median(preloads)])
  rows.push(['runNode, valgrind', small, await timed(() => churn('valgrind', small))])
  rows.push(['runNode, gdb', small, await timed(() => churn('gdb', small))])
  const nativeSmall = await timed(() => execa(process.execPath, [SCRIPT, String(small)]))
  console.log(`\nrunNode: debugee/addon/entries.mjs, its churn test case making 4 allocations an entry (native and preload: the median of 3 runs)\n`)
  console.log(`${'run'.padEnd(38)} ${'entries'.padStart(9)} ${'seconds'.padStart(8)} ${'vs native'.padStart(10)}`)
  for (const [name, entries, seconds] of rows) {
    const base = entries === large ? native : nativeSmall
    console.log(`${name.padEnd(38)} ${entries.toLocaleString('en-US').padStart(9)} ${seconds.toFixed(2).padStart(8)} ${`${(seconds / base).toFixed(1)}x`.padStart(10)}`)
  }
  console.log(`(native with ${small.toLocaleString('en-US')} entries: ${nativeSmall.toFixed(2)} s)`)
}

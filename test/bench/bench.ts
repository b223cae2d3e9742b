/**
 * npm run bench: the allocation-heavy debugee program, in one go, natively, under GDB with
 * do-nothing breakpoints (the floor), under each heapspec backend and under plain memcheck.
 * Prints events per second and each one's slowdown against the native run.
 */
import { join } from 'node:path'
import { execa } from 'execa'
import { runNative } from '../../src/index.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')
const iterations = Number(process.env.BENCH_ITERATIONS ?? 20000)
const bench = join(ROOT, 'debugee', 'build', 'bench')
const argv = [bench, String(iterations)]

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - started) / 1e9
}

async function main(): Promise<void> {
  let events = 0
  const rows: [string, number][] = []
  rows.push(['native', await timed(() => execa(bench, [String(iterations)]))])
  rows.push(['gdb, do-nothing breakpoints (floor)', await timed(() => execa('gdb', ['-nx', '-q', '-batch', '-x', join(ROOT, 'test', 'bench', 'floor.py'), '--args', ...argv]))])
  rows.push([
    'heapspec --backend gdb',
    await timed(async () => {
      const run = await runNative(argv, { backend: 'gdb' })
      events = run.json.totals.allocations + run.json.totals.frees
    }),
  ])
  rows.push(['heapspec --backend valgrind', await timed(() => runNative(argv, { backend: 'valgrind' }))])
  rows.push(['valgrind --leak-check=full (plain)', await timed(() => execa('valgrind', ['-q', '--leak-check=full', ...argv]))])
  const native = rows[0]![1]
  const floor = rows[1]![1]
  console.log(`bench: debugee/build/bench ${iterations}: ${events.toLocaleString('en-US')} allocation events (allocations + frees)\n`)
  console.log(`${'run'.padEnd(38)} ${'seconds'.padStart(8)} ${'events/s'.padStart(11)} ${'vs native'.padStart(10)} ${'vs floor'.padStart(9)}`)
  for (const [name, seconds] of rows) {
    console.log(
      `${name.padEnd(38)} ${seconds.toFixed(2).padStart(8)} ${Math.round(events / seconds).toLocaleString('en-US').padStart(11)} ${`${(seconds / native).toFixed(1)}x`.padStart(10)} ${`${(seconds / floor).toFixed(2)}x`.padStart(9)}`,
    )
  }
}

await main()

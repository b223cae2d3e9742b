/**
 * npm run bench, third part: the workloads of issue #15 beside the tools a user would pick instead,
 * each on the same source (debugee/scale/, built -O2 -g, and again with -fsanitize=leak):
 *   - threads allocating: 1, 2 and 8 threads sharing 4 million malloc/free pairs;
 *   - a C++ container workload: std::map inserts in 4 threads, from two callers at one depth;
 *   - deep stacks: trees of depth 30 built with realloc;
 *   - many sites: 100,000 distinct call sites, each losing a block;
 *   - millions of live blocks: 5,000,000 live at exit (debugee/field/many-blocks, built so too);
 *   - many test cases: 10,000 marker test cases, and 300 over a fixture of 100,000 live blocks
 *     (debugee/field/many-tests; heaptrack and LSan see no test cases, only the same program).
 * Each natively, under heapspec (preload), heaptrack (record, then heaptrack_print), LeakSanitizer
 * and memcheck, printing each one's ratio to native and to LSan. The native, heapspec and LSan rows
 * take a second or less: each is the best of three runs (a shared machine's load comes and goes);
 * heaptrack and memcheck run once. Every heapspec figure (the leak summary and the totals) is
 * checked equal to memcheck's on the same command.
 * BENCH_PEERS=threads-1,map picks workloads by name.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { memcheck } from '../support/memcheck.js'
import { check, heapspec, measure, ROOT } from './measure.js'

interface Workload {
  name: string
  title: string
  program: string
  args: string[]
}

const build = (name: string): string => join(ROOT, 'debugee', 'build', 'scale', name)
const pairs = '4000000'
const workloads: Workload[] = [
  ...[1, 2, 8].map((n) => ({ name: `threads-${n}`, title: `${n} thread${n > 1 ? 's' : ''} sharing ${Number(pairs).toLocaleString('en-US')} malloc/free pairs`, program: 'threads-alloc', args: [String(n), pairs] })),
  { name: 'map', title: 'std::map inserts in 4 threads (40 rounds of 10,000 keys each), two callers at one depth', program: 'map-threads', args: [] },
  { name: 'deep', title: '20,000 trees of depth 30 built with realloc', program: 'deep-realloc', args: ['20000'] },
  { name: 'sites', title: '100,000 distinct call sites, each losing a 16-byte block', program: 'many-sites', args: [] },
  { name: 'blocks', title: '5,000,000 blocks live at exit, 5,000 of them lost', program: 'many-blocks', args: ['5000000'] },
  { name: 'tests', title: '10,000 marker test cases of 100 allocations each, every 10th leaking a block', program: 'many-tests', args: [] },
  { name: 'fixture', title: '300 marker test cases of 100 allocations over a fixture of 100,000 live blocks', program: 'many-tests', args: ['300', '100000'] },
]
const picked = process.env.BENCH_PEERS?.split(',')

/** heaptrack as a user runs it: record, then heaptrack_print the recording. */
async function heaptrack(command: string[]): Promise<number | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-bench-heaptrack-'))
  try {
    const record = await measure(['heaptrack', '-o', join(dir, 'record'), ...command])
    const file = readdirSync(dir).find((f) => f.startsWith('record'))
    if (!file) return undefined
    const print = await measure(['heaptrack_print', join(dir, file)])
    return record.seconds + print.seconds
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function row(name: string, seconds: number | undefined, native: number, lsan: number): string {
  if (seconds === undefined) return `${name.padEnd(40)} ${'-'.padStart(8)}`
  const ratio = (base: number): string => `${(seconds / base).toFixed(1)}x`
  return `${name.padEnd(40)} ${seconds.toFixed(2).padStart(8)} ${ratio(native).padStart(10)} ${ratio(lsan).padStart(9)}`
}

/** The fastest of three runs. */
async function best<T extends { seconds: number }>(run: () => Promise<T>): Promise<T> {
  let fastest = await run()
  for (let i = 1; i < 3; i++) {
    const next = await run()
    if (next.seconds < fastest.seconds) fastest = next
  }
  return fastest
}

async function compare(w: Workload): Promise<void> {
  const command = [build(w.program), ...w.args]
  const native = (await best(() => measure(command))).seconds
  const heapspecRun = await best(() => heapspec('preload', command))
  const heaptrackSeconds = (await execa('heaptrack', ['--version'], { reject: false })).exitCode === 0 ? await heaptrack(command) : undefined
  const lsan = (await best(() => measure([build(`${w.program}-lsan`), ...w.args]))).seconds
  const memcheckStarted = process.hrtime.bigint()
  const reference = await memcheck(command)
  const memcheckSeconds = Number(process.hrtime.bigint() - memcheckStarted) / 1e9
  check(`${w.name}: the leak summary beside memcheck's`, heapspecRun.run.leakSummary, reference.leakSummary)
  check(`${w.name}: the totals beside memcheck's`, heapspecRun.run.totals, reference.totals)
  const { definite, indirect } = reference.leakSummary
  console.log(`\n${w.name}: ${w.title} (debugee/scale/${w.program}${w.args.length ? ` ${w.args.join(' ')}` : ''})`)
  console.log(`memcheck and heapspec both: definitely lost ${definite.bytes.toLocaleString('en-US')} bytes in ${definite.blocks.toLocaleString('en-US')} blocks, indirectly ${indirect.bytes.toLocaleString('en-US')} in ${indirect.blocks.toLocaleString('en-US')}; ${reference.totals.allocations.toLocaleString('en-US')} allocations\n`)
  console.log(`${'run'.padEnd(40)} ${'seconds'.padStart(8)} ${'vs native'.padStart(10)} ${'vs LSan'.padStart(9)}`)
  console.log(row('native', native, native, lsan))
  console.log(row('heapspec (preload)', heapspecRun.seconds, native, lsan))
  console.log(row('heaptrack (record + heaptrack_print)', heaptrackSeconds, native, lsan))
  console.log(row('LSan (-fsanitize=leak)', lsan, native, lsan))
  console.log(row('memcheck (--leak-check=full)', memcheckSeconds, native, lsan))
}

/** What a heapspec run costs over the program itself, on the same machine at the same time. */
async function fixedCost(): Promise<void> {
  const command = [build('threads-alloc'), '1', '0']
  const native = (await best(() => measure(command))).seconds
  const run = await best(() => heapspec('preload', command))
  console.log(`heapspec's fixed cost now: ${(run.seconds - native).toFixed(2)} s over the program (threads-alloc 1 0: ${native.toFixed(2)} s native, ${run.seconds.toFixed(2)} s under heapspec); every heapspec row below includes it`)
}

await fixedCost()
for (const w of workloads) if (!picked || picked.includes(w.name)) await compare(w)

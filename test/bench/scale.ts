/**
 * npm run bench, second part: the shapes real suites have, each natively, under heapspec and under
 * plain memcheck on the same program, side by side, with the heapspec process's peak memory:
 *   - millions of blocks live at exit (debugee/field/many-blocks): the leak scan's scale;
 *   - 10,000 marker test cases of 100 allocations, every 10th leaking (debugee/field/many-tests);
 *   - runNode on scripts calling the node-addon example's functions, timed as a test file calls it
 *     (the whole process: heapspec's start, the run, the report): a million and more of the addon's
 *     allocation events in one test case, and 200 test cases each leaving Node's blocks live.
 * Every heapspec figure is checked against what the program does by construction.
 * BENCH_SCALE=1000000,5000000 picks the live-block counts (default 1, 5 and 10 million).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { check, heapspec, measure, ROOT, type BenchRun, type Measured } from './measure.js'

const scales = (process.env.BENCH_SCALE ?? '1000000,5000000,10000000').split(',').map(Number)

function row(name: string, m: Measured, native: number): string {
  return `${name.padEnd(44)} ${m.seconds.toFixed(2).padStart(8)} ${`${(m.seconds / native).toFixed(1)}x`.padStart(10)} ${(m.mb === undefined ? '-' : m.mb.toFixed(0)).padStart(9)}`
}

function header(title: string): void {
  console.log(`\n${title}\n\n${'run'.padEnd(44)} ${'seconds'.padStart(8)} ${'vs native'.padStart(10)} ${'peak MB'.padStart(9)}`)
}

async function liveBlocks(): Promise<void> {
  const program = join(ROOT, 'debugee', 'build', 'field', 'many-blocks')
  for (const n of scales) {
    header(`scale: ${n.toLocaleString('en-US')} blocks live at exit (debugee/field/many-blocks ${n}), ${(n / 1000).toLocaleString('en-US')} of them lost`)
    const native = await measure([program, String(n)])
    console.log(row('native', native, native.seconds))
    const preload = await heapspec('preload', [program, String(n)])
    check(`many-blocks ${n} definitely lost`, preload.run.leakSummary.definite, { bytes: (n / 1000) * 32, blocks: n / 1000 })
    console.log(row('heapspec (preload; peak: its biggest process)', preload, native.seconds))
    const memcheck = await measure(['valgrind', '-q', '--leak-check=full', program, String(n)])
    console.log(row('valgrind --leak-check=full (plain)', memcheck, native.seconds))
  }
}

async function manyTests(): Promise<void> {
  const program = join(ROOT, 'debugee', 'build', 'field', 'many-tests')
  header('10,000 marker test cases, 100 allocations each, every 10th leaking one block (debugee/field/many-tests)')
  const native = await measure([program])
  console.log(row('native', native, native.seconds))
  const preload = await heapspec('preload', [program])
  check('many-tests test cases', preload.run.tests.length, 10_000)
  check('many-tests definitely lost', preload.run.leakSummary.definite, { bytes: 16_000, blocks: 1000 })
  console.log(row('heapspec (preload)', preload, native.seconds))
  const memcheck = await measure(['valgrind', '-q', '--leak-check=full', program])
  console.log(row('valgrind --leak-check=full (plain, no test cases)', memcheck, native.seconds))
}

/** The node-addon example, built with node-gyp in a scratch copy, and scripts calling it. */
async function addonCopy(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'heapspec-bench-addon-')), 'node-addon')
  cpSync(join(ROOT, 'examples', 'node-addon'), dir, { recursive: true, filter: (src) => !/\/(node_modules|build)$/.test(src) })
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(ROOT, join(dir, 'node_modules', 'heapspec'))
  const prefix = dirname(dirname(process.execPath))
  const env = { ...process.env, ...(existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? { npm_config_nodedir: prefix } : {}) }
  await execa('npm', ['run', '-s', 'build:addon'], { cwd: dir, env })
  return dir
}

/** A script in `dir` that loads the addon and runs `body` (test cases through heapspec/markers). */
function addonScript(dir: string, name: string, body: string): string {
  const script = join(dir, name)
  writeFileSync(
    script,
    `import { createRequire } from 'node:module'\nimport { testCase } from 'heapspec/markers'\nconst addon = createRequire(import.meta.url)('./build/Release/addon.node')\n${body}\n`,
  )
  return script
}

/** runNode(script) as a user's test file calls it, the whole process timed: heapspec's start, the run, its report. */
async function runNodeMeasured(dir: string, script: string, backend: string): Promise<Measured & { run: BenchRun }> {
  const json = join(mkdtempSync(join(tmpdir(), 'heapspec-bench-')), 'run.json')
  const driver =
    `import { writeFileSync } from 'node:fs'\nimport { runNode } from 'heapspec'\n` +
    `const run = await runNode(${JSON.stringify(script)}, { backend: ${JSON.stringify(backend)} })\nwriteFileSync(${JSON.stringify(json)}, JSON.stringify(run.json))\n`
  const m = await measure(['node', '--input-type=module', '-e', driver], { cwd: dir })
  if (!existsSync(json)) throw new Error(`bench: runNode ${backend} on ${script} wrote no run: ${m.stderr}`)
  return { ...m, run: JSON.parse(readFileSync(json, 'utf8')) as BenchRun }
}

async function runNodeRows(): Promise<void> {
  const calls = 400_000 // each join allocates and frees three blocks: 2.4 million events
  const dir = await addonCopy()
  const loop = addonScript(dir, 'loop.mjs', `testCase('loop', () => { for (let i = 0; i < ${calls}; i++) addon.join('heap', 'spec') })`)
  header(`runNode: ${calls.toLocaleString('en-US')} calls of the node-addon example's join in one test case (${(calls * 6).toLocaleString('en-US')} allocation events of the addon's)`)
  const native = await measure(['node', loop], { cwd: dir })
  console.log(row('node (native)', native, native.seconds))
  for (const backend of ['preload', 'gdb', 'valgrind']) {
    if (backend !== 'preload' && process.env.BENCH_RUNNODE_ALL !== '1') continue
    const m = await runNodeMeasured(dir, loop, backend)
    const allocations = (m.run.tests[0] as { allocations: number }).allocations
    // at least the addon's own: also what V8 allocates while the addon is on the stack (its collector,
    // say, run from inside a call), as an allocation made with the addon's code on the stack
    if (allocations < calls * 3) check(`runNode ${backend} allocations in the loop`, allocations, calls * 3)
    console.log(row(`runNode, ${backend}`, m, native.seconds))
  }
  if (process.env.BENCH_RUNNODE_ALL !== '1') console.log('(gdb and valgrind take minutes here: BENCH_RUNNODE_ALL=1 adds them)')

  // many test cases, each leaving V8's and Node's blocks live at its end, every 50th leaking one of the addon's
  const cases = 200
  const many = addonScript(dir, 'many.mjs', `for (let t = 0; t < ${cases}; t++) testCase('t' + t, () => { for (let i = 0; i < 100; i++) addon.join('heap', 'spec'); if (t % 50 === 0) addon.leakyJoin('a', 'b') })`)
  header(`runNode: ${cases} test cases of 100 joins, every 50th leaking one block of the addon's`)
  const manyNative = await measure(['node', many], { cwd: dir })
  console.log(row('node (native)', manyNative, manyNative.seconds))
  const m = await runNodeMeasured(dir, many, 'preload')
  check('runNode preload definitely lost on many test cases', m.run.leakSummary.definite, { bytes: 4 * 3, blocks: 4 })
  console.log(row('runNode, preload', m, manyNative.seconds))
}

await liveBlocks()
await manyTests()
await runNodeRows()

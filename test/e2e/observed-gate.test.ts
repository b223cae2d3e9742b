import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import type { RunJson } from '../../src/model/types.js'
import { program, ROOT } from '../support/debugee.js'

// With `objects`, only allocations made with an observed object's frame on the stack are the run's
// figures. Until one of those objects is loaded no stack can hold its frame, so the interposer takes
// no stacks (a Node script's start-up allocates hundreds of thousands of times before its addon is
// loaded). It can tell only for patterns that are literal path ends (a string, /\.node$/); for any
// other pattern it walks every stack, as before. Both must give the same figures.

function figures(run: RunJson): unknown {
  return { totals: run.totals, leakSummary: run.leakSummary, tests: run.tests.map((t) => [t.name, t.allocations, t.frees, t.leakSummary]), leaks: run.leaks.map((l) => [l.kind, l.bytes, l.blocks, l.test, l.stack[0]?.fn]) }
}

/**
 * runNode(script, { backend: 'preload', args, objects }) in a process of its own, as a test file
 * calls it, with HEAPSPEC_DEBUG's line (its counts) and `env` set there: the run, the script's
 * own stdout, and that line.
 */
async function runNodeApart(script: string, args: string[], objects: string, env: Record<string, string> = {}): Promise<{ run: RunJson; stdout: string; debug: string }> {
  const driver = `import { runNode } from '${ROOT}/dist/src/index.js'
const run = await runNode(${JSON.stringify(script)}, { backend: 'preload', args: ${JSON.stringify(args)}, objects: [${objects}] })
process.stdout.write(JSON.stringify({ run: run.toJSON(), stdout: run.stdout }))`
  const r = await execa('node', ['--input-type=module', '-e', driver], { env: { HEAPSPEC_DEBUG: '1', ...env } })
  const debug = String(r.stderr).split('\n').find((line) => line.startsWith('heapspec: preload capture of '))
  if (!debug) throw new Error(`no debug line in ${String(r.stderr)}`)
  const out = JSON.parse(String(r.stdout)) as { run: RunJson; stdout: string }
  return { ...out, debug }
}

/** runNode on debugee/addon/entries.mjs, with the count of stacks sent. */
async function entries(objects: string): Promise<{ run: RunJson; stacks: number }> {
  const { run, debug } = await runNodeApart(`${ROOT}/debugee/addon/entries.mjs`, ['1000'], objects)
  return { run, stacks: Number(/; (\d+) stacks;/.exec(debug)![1]) }
}

describe('objects: no stacks are taken before an observed object is loaded', () => {
  it('runNode (/\\.node$/): the addon\'s figures as with every stack walked, from a fraction of the stacks', async () => {
    const [gated, walked] = await Promise.all([entries('/\\.node$/'), entries('/\\.nod[e]$/')])
    expect(figures(gated.run)).toEqual(figures(walked.run))
    expect(gated.run.tests.find((t) => t.name === 'churn')).toMatchObject({ allocations: 4000, frees: 4000 })
    // Node's own start-up makes some 7,000 distinct stacks; the addon's era under 1,500
    expect(walked.stacks).toBeGreaterThan(4000)
    expect(gated.stacks).toBeLessThan(2000)
    expect(gated.stacks).toBeGreaterThan(0)
  })

  it('an observed object loaded with the program (libc) opens the gate at once', async () => {
    const runs = await Promise.all([[/libc\.so\.6$/], ['libc.so.6'], [/libc\.so\.[6]$/]].map((objects) => runNative([program('libc')], { backend: 'preload', objects })))
    const [literal, path, walked] = runs.map((r) => figures(r.json))
    expect(literal).toEqual(walked)
    expect(path).toEqual(walked)
    expect(runs[0]!.json.totals).toEqual({ allocations: 11, frees: 7, bytesAllocated: 8902 })
  })
})

/** runNode on `body` (test cases over the entries addon), with the count of test ends scanned. */
async function scanned(body: string, objects: string, env: Record<string, string> = {}): Promise<{ run: RunJson; stdout: string; ends: string; batched: number }> {
  const file = join(mkdtempSync(join(tmpdir(), 'heapspec-observed-ends-')), 'ends.mjs')
  writeFileSync(
    file,
    `import { createRequire } from 'node:module'\nimport { testCase } from '${ROOT}/dist/src/markers.js'\nconst entries = createRequire(import.meta.url)('${ROOT}/debugee/build/addon/entries.node')\n${body}\n`,
  )
  const { run, stdout, debug } = await runNodeApart(file, [], objects, env)
  const ends = /; (\d+ test ends and the end scanned in the process \(\d+ of them by the test case's own blocks alone\))/.exec(debug)
  if (!ends) throw new Error(`no test-end counts in ${debug}`)
  const batched = /; (\d+) blocks in batches$/m.exec(debug)
  if (!batched) throw new Error(`no batch count in ${debug}`)
  return { run, stdout, ends: ends[1]!, batched: Number(batched[1]) }
}

describe("objects: a test end scans only for the observed objects' blocks", () => {
  it("a Node script's test cases that leave only Node's blocks live need no scan; the figures are the whole scan's", async () => {
    // js and churn leave Node's Buffers live (malloc'd by Node, no addon frame on their stacks);
    // leak leaves the addon's Entry, lost with its key, vector and name
    const body = [
      "testCase('js', () => { globalThis.kept = Buffer.allocUnsafeSlow(100000) })",
      "testCase('leak', () => { if (entries.leak('leaked', 2) !== 2) throw new Error('leak') })",
      "testCase('churn', () => { entries.churn(10); globalThis.more = Buffer.allocUnsafeSlow(50000) })",
      "console.log('ends: done')",
    ].join('\n')
    const [observed, walked, whole] = await Promise.all([scanned(body, '/\\.node$/'), scanned(body, '/\\.nod[e]$/'), scanned(body, '/\\.node$/', { HEAPSPEC_SCAN: 'whole' })])
    for (const r of [observed, walked, whole]) expect(r.stdout).toBe('ends: done\n')
    // the interposer knows the addon's code only from literal path ends: then only leak's end is
    // scanned, by its own blocks (a stale word of Node's that points into them lies in free memory,
    // which the whole scan never reads); otherwise every end that left a block live is
    expect(observed.ends).toBe("1 test ends and the end scanned in the process (1 of them by the test case's own blocks alone)")
    expect(walked.ends).toMatch(/^3 test ends and the end scanned/)
    expect(whole.ends).toBe("1 test ends and the end scanned in the process (0 of them by the test case's own blocks alone)")
    // and the host learns of the addon's blocks alone: Node's tens of thousands of start-up blocks
    // went to it as records at the first boundary (and their frees at exit as lines), though no
    // figure counts them; the walked run, whose objects the interposer cannot name, still sends them
    expect(observed.batched).toBeLessThan(100)
    expect(walked.batched).toBeGreaterThan(10_000)
    expect(figures(observed.run)).toEqual(figures(whole.run))
    expect(figures(walked.run)).toEqual(figures(whole.run))
    const lost = (r: RunJson) => r.tests.map((t) => [t.name, t.leakSummary.definite, t.leakSummary.indirect])
    expect(lost(observed.run)).toEqual([
      ['js', { bytes: 0, blocks: 0 }, { bytes: 0, blocks: 0 }],
      ['leak', { bytes: 64, blocks: 1 }, { bytes: 7 + 8 + 61, blocks: 3 }],
      ['churn', { bytes: 0, blocks: 0 }, { bytes: 0, blocks: 0 }],
    ])
  })
})

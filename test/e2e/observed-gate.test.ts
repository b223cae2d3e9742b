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

/** runNode on debugee/addon/entries.mjs in a process of its own, with the debug line that counts the stacks sent. */
async function entries(objects: string): Promise<{ run: RunJson; stacks: number }> {
  const script = `import { runNode } from '${ROOT}/dist/src/index.js'
const run = await runNode('${ROOT}/debugee/addon/entries.mjs', { backend: 'preload', args: ['1000'], objects: [${objects}] })
process.stdout.write(JSON.stringify(run.toJSON()))`
  const r = await execa('node', ['--input-type=module', '-e', script], { env: { HEAPSPEC_DEBUG: '1' } })
  const stacks = /; (\d+) stacks;/.exec(String(r.stderr))
  if (!stacks) throw new Error(`no debug line in ${String(r.stderr)}`)
  return { run: JSON.parse(String(r.stdout)) as RunJson, stacks: Number(stacks[1]) }
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

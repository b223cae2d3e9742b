import { cpSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import { runNode, type HeapRun } from '../../src/index.js'
import { processesMentioning, ROOT } from '../support/debugee.js'
import { counts } from '../support/test-cases.js'

// examples/node-addon, built with node-gyp as its user would, and its scenario run under heapspec:
// only the addon's allocations count, test case by test case.
let example: string

beforeAll(async () => {
  example = join(mkdtempSync(join(tmpdir(), 'heapspec-addon-')), 'node-addon')
  cpSync(join(ROOT, 'examples', 'node-addon'), example, { recursive: true, filter: (src) => !/\/(node_modules|build)$/.test(src) })
  mkdirSync(join(example, 'node_modules'))
  symlinkSync(ROOT, join(example, 'node_modules', 'heapspec'))
  await execa('npm', ['run', '-s', 'build:addon'], { cwd: example, env: nodeGypEnv(dirname(example)) })
}, 120_000)

/**
 * node-gyp's environment, the same on every machine: no user npm config (which may or may not name
 * a `nodedir`), and Node's headers from the running Node's own installation when it has them
 * (offline; the example's README says so), else node-gyp's download of them.
 */
function nodeGypEnv(scratch: string): Record<string, string | undefined> {
  const userconfig = join(scratch, 'npmrc')
  writeFileSync(userconfig, '')
  const prefix = dirname(dirname(process.execPath))
  const headers = existsSync(join(prefix, 'include', 'node', 'node_api.h'))
  const env: Record<string, string | undefined> = { ...process.env, npm_config_userconfig: userconfig }
  for (const name of Object.keys(env)) if (/^npm_config_nodedir$/i.test(name)) delete env[name]
  if (headers) env.npm_config_nodedir = prefix
  return env
}

const none = { bytes: 0, blocks: 0 }

// The backends agree on every test case's figures and the leak: the addon's blocks are those
// allocated with its code on the stack. Under preload (auto's choice) every block is tracked, so
// the scan sees Node's whole heap; under gdb the addon's own calls and its calls out of its code
// stop, and a filter in free stops at the frees of its blocks; under valgrind memcheck sees
// Node's whole heap, and heapspec keeps the records and totals with an addon frame.
describe.each(['preload', 'gdb', 'valgrind'] as const)('the node-addon example under %s', (backend) => {
  let run: HeapRun
  beforeAll(async () => {
    run = await runNode(join(example, 'test', 'scenario.mjs'), { backend: backend === 'preload' ? undefined : backend, cwd: example })
  }, 180_000)

  it('leaves no process behind', () => {
    expect(processesMentioning(join(example, 'test', 'scenario.mjs'))).toEqual([])
  })

  it('counts only what the addon allocates, per test case', () => {
    expect(run.json.backend).toBe(backend)
    expect(run.json.program.exitCode).toBe(0)
    expect(run.json.warnings).toBeUndefined()
    // Node's own C++ new and delete go through the preload backend's operators too: no false mismatch
    if (backend !== 'valgrind') expect(run.json.errors).toEqual([])
    // join: "heap\0" and "spec\0" copied (5 + 5 bytes), joined into "heapspec\0" (9); all freed
    expect(counts(run.tests)).toEqual([
      { name: 'join', allocations: 3, frees: 3, bytesAllocated: 19, leakSummary: { definite: none, indirect: none, possible: none, reachable: none } },
      {
        name: 'leakyJoin',
        allocations: 3,
        frees: 2,
        bytesAllocated: 19,
        leakSummary: { definite: { bytes: 9, blocks: 1 }, indirect: none, possible: none, reachable: none },
      },
    ])
    // what Node allocates while the addon's init registers its two functions (a 24- and a 72-byte
    // block each, and a table that grows with the module's path), with the init on the stack: all
    // of it freed again, by Node, which every backend sees
    const outside = { allocations: run.json.totals.allocations - 6, frees: run.json.totals.frees - 5 }
    expect(outside.allocations).toBeGreaterThanOrEqual(5)
    expect(outside.frees).toBe(outside.allocations)
    expect(run.json.inUseAtExit).toEqual({ bytes: 9, blocks: 1 })
    // memcheck finds no memory error in Node or V8 running the example: nothing to suppress
    expect(run.json.errors).toEqual([])
  })

  it("finds the leak at the addon's source line, and nothing of Node's own", () => {
    expect(run.json.leakSummary).toEqual({ definite: { bytes: 9, blocks: 1 }, indirect: none, possible: none, reachable: none })
    expect(run.leaks).toHaveLength(1)
    expect(run.leaks[0]).toMatchObject({ kind: 'definite', bytes: 9, blocks: 1, test: 'leakyJoin' })
    expect(run.leaks[0]!.stack.slice(0, 2).map((f) => `${f.fn} (${f.file}:${f.line})`)).toEqual([
      'join_strings (src/addon.c:27)',
      'leaky_join (src/addon.c:45)',
    ])
  })
})

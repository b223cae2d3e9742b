import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import { formatFrame } from '../../src/report/text.js'
import { expectations, program } from '../support/debugee.js'

// The GDB backend on every debugee program, against memcheck's own figures for the same binary
// (debugee/expected.json, recorded from valgrind; test/e2e/cross-check.test.ts runs valgrind live).
// bench is the benchmark's 200,000-event program: the small run below covers it.
describe.each(expectations().filter(([name]) => name !== 'bench'))('gdb backend on %s', (name, expected) => {
  it('counts, classifies and locates exactly as memcheck does', async () => {
    const run = (await runNative([program(name)], { backend: 'gdb', timeout: 120 })).toJSON()
    expect(run.backend).toBe('gdb')
    expect({ exitCode: run.program.exitCode, signal: run.program.signal }).toEqual({ exitCode: expected.exitCode, signal: expected.signal })
    expect(run.totals).toEqual({ allocations: expected.allocations, frees: expected.frees, bytesAllocated: expected.bytesAllocated })
    expect(run.inUseAtExit).toEqual(expected.inUseAtExit)
    expect(run.leakSummary).toEqual({
      definite: expected.definite,
      indirect: expected.indirect,
      possible: expected.possible,
      reachable: expected.reachable,
    })
    for (const site of expected.sites) {
      const match = run.leaks.find(
        (l) => l.kind === site.kind && l.stack.some((f) => f.fn === site.fn && f.file?.endsWith(site.file) && f.line === site.line),
      )
      expect(match, `${site.kind} ${site.bytes} B at ${site.fn} (${site.file}:${site.line}) in\n${run.leaks.map((l) => `${l.kind} ${l.bytes} ${l.stack.map(formatFrame).join(' <- ')}`).join('\n')}`).toBeDefined()
    }
  })
})

describe('gdb backend on the benchmark program', () => {
  it('sees every allocation and free of a short run', async () => {
    const run = (await runNative([program('bench'), '2000'], { backend: 'gdb' })).toJSON()
    expect(run.totals.allocations).toBe(2000)
    expect(run.totals.frees).toBe(2000)
    expect(run.inUseAtExit).toEqual({ bytes: 0, blocks: 0 })
  })
})

import { describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import type { RunJson } from '../../src/model/types.js'
import { program } from '../support/debugee.js'

/** A loss record reduced to what both backends must agree on: kind, amount and allocation site. */
function sites(run: RunJson): string[] {
  return run.leaks
    .map((l) => {
      const f = l.stack[0]
      return `${l.kind} ${l.bytes}B/${l.blocks} at ${f?.fn} (${f?.file?.split('/').at(-1)}:${f?.line})`
    })
    .sort()
}

// memcheck is the reference: the same binary under both backends, in the same test.
const PROGRAMS = ['definite', 'indirect', 'reachable', 'possible', 'realloc', 'aligned', 'cxx', 'threads', 'libc', 'crash', 'definite-O2']

describe.each(PROGRAMS)('%s under gdb and valgrind', (name) => {
  it('gives the same counts, leak kinds, bytes, blocks and sites', async () => {
    const [gdb, valgrind] = await Promise.all([
      runNative([program(name)], { backend: 'gdb' }),
      runNative([program(name)], { backend: 'valgrind' }),
    ]).then((runs) => runs.map((r) => r.toJSON()))
    expect(gdb!.backend).toBe('gdb')
    expect(valgrind!.backend).toBe('valgrind')
    expect(gdb!.program).toEqual(valgrind!.program)
    expect(gdb!.totals).toEqual(valgrind!.totals)
    expect(gdb!.inUseAtExit).toEqual(valgrind!.inUseAtExit)
    expect(gdb!.leakSummary).toEqual(valgrind!.leakSummary)
    expect(sites(gdb!)).toEqual(sites(valgrind!))
  })
})

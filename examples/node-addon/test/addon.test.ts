import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { runNode, type HeapRun } from 'heapspec'

const scenario = fileURLToPath(new URL('./scenario.mjs', import.meta.url))

describe('the addon', () => {
  let run: HeapRun
  beforeAll(async () => {
    // Only what the addon (.node files) allocates is counted: Node's own memory is not yours.
    run = await runNode(scenario)
  })

  it('join frees what it allocates', () => {
    expect(run.test('join')).toHaveNoLeaks()
    expect(run.test('join')).toAllocateAtMost({ allocations: 3, bytes: 19 })
  })

  it('leakyJoin leaks its joined buffer: 9 bytes in 1 block', () => {
    expect(run.test('leakyJoin')).not.toHaveNoLeaks()
    expect(run.test('leakyJoin')).toLeakAtMost({ bytes: 9, blocks: 1 })
    expect(run.test('leakyJoin').leaks[0]!.stack[0]).toMatchObject({ fn: 'join_strings', file: 'src/addon.c', line: 27 })
  })
})

import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { runNative, type HeapRun } from 'heapspec'

const program = fileURLToPath(new URL('../build/list', import.meta.url))

describe('the list library', () => {
  let run: HeapRun
  beforeAll(async () => {
    run = await runNative([program])
  })

  it('leaks nothing', () => {
    expect(run).toHaveNoLeaks()
  })

  it('allocates two blocks per item, and nothing for an empty list', () => {
    expect(run.test('test_push_three')).toAllocateAtMost({ allocations: 6 })
    expect(run.test('test_empty')).toAllocateAtMost({ allocations: 0, bytes: 0 })
  })

  it('holds three items at most at once: 3 x (16 + 2) bytes', () => {
    expect(run.test('test_push_three')).toPeakAtMost({ bytes: 54 })
    expect(run.test('test_push_three')).not.toPeakAtMost({ bytes: 53 })
  })

  it('keeps its allocation counts (stored in __snapshots__, updated with -u)', () => {
    expect(run.test('test_push_three')).toMatchAllocationSnapshot()
  })
})

describe('the list library with its bug switched on', () => {
  let run: HeapRun
  beforeAll(async () => {
    run = await runNative([program, '--leak'])
  })

  it('is caught, in the test case that has it', () => {
    expect(run).not.toHaveNoLeaks()
    expect(run.test('test_drop_list')).not.toHaveNoLeaks()
    expect(run.test('test_push_three')).toHaveNoLeaks()
    expect(run.test('test_drop_list')).toLeakAtMost({ blocks: 4 })
  })
})

// Compile-only: heapspec's matchers as a Vitest user writes them (checked by types.test.ts).
import { expect, test, type TaskMeta } from 'vitest'
import { runNative, type RunJson } from 'heapspec'
import { describeNative } from 'heapspec/vitest'
import HeapspecVitestReporter from 'heapspec/reporter/vitest'

test('types', async () => {
  const run = await runNative(['./build/tests'], { backend: 'gdb' })
  expect(run).toHaveNoLeaks()
  expect(run).toHaveNoLeaks({ kinds: ['definite', 'indirect'] })
  expect(run).not.toHaveNoLeaks()
  expect(run.test('parse_empty')).toAllocateAtMost({ allocations: 10 })
  expect(run.test('parse_big')).toPeakAtMost({ bytes: 1048576 })
  expect(run).toPeakAtMost({ bytes: 1048576, heapBytes: 2097152 })
  expect(run.test('parse_big')).toMatchAllocationSnapshot({ peak: true })
  expect(run.test('parse_big')).toMatchAllocationSnapshot({ peak: true }, 'with its peak')
  // @ts-expect-error: toPeakAtMost takes bytes and heapBytes
  expect(run).toPeakAtMost({ blocks: 1 })
  // @ts-expect-error: peak is a boolean
  expect(run).toMatchAllocationSnapshot({ peak: 'yes' })
  expect(run.test('parse_empty')).toAllocateAtMost({ bytes: 4096 })
  expect(run.test('parse_big')).toLeakAtMost({ bytes: 1024, blocks: 2 })
  expect(run.test('parse_big')).toMatchAllocationSnapshot()
  expect(run.toJSON() satisfies RunJson).toMatchAllocationSnapshot('as JSON')
  expect(run).toHaveNoMemoryErrors()
  expect(run.test('parse_big')).not.toHaveNoMemoryErrors({ kinds: ['invalid-read'] })
  // @ts-expect-error: kinds is an array
  expect(run).toHaveNoMemoryErrors({ kinds: 'invalid-read' })

  // @ts-expect-error: not a leak kind
  expect(run).toHaveNoLeaks({ kinds: ['lost'] })
  // @ts-expect-error: toLeakAtMost takes bytes and blocks
  expect(run).toLeakAtMost({ allocations: 1 })
  // @ts-expect-error: toAllocateAtMost needs its limits
  expect(run).toAllocateAtMost()
  // @ts-expect-error: the hint is a string
  expect(run).toMatchAllocationSnapshot(1)
})

describeNative(['./build/tests'], { cases: ['parse_empty'], backend: 'valgrind' })
// @ts-expect-error: cases are names
describeNative(['./build/tests'], { cases: [1] })

// The reporter, as vitest.config.ts names it, and the runs heapspec/vitest files in task.meta for it.
const reporter: import('vitest/node').Reporter = new HeapspecVitestReporter({ outputDir: 'reports/heap', kinds: ['definite'], watermarks: [1, 4096] })
// @ts-expect-error: not a leak kind
new HeapspecVitestReporter({ kinds: ['lost'] })
const meta: TaskMeta = {}
const firstRun: string | undefined = meta.heapspec?.runs[0]?.id
void reporter
void firstRun

// Compile-only: heapspec's matchers as a Jest user writes them with @jest/globals (checked by types.test.ts).
import { expect, test } from '@jest/globals'
import { runNative } from 'heapspec'
import { describeNative } from 'heapspec/jest'
import HeapspecJestReporter from 'heapspec/reporter/jest'

test('types', async () => {
  const run = await runNative(['./build/tests'], { backend: 'gdb' })
  expect(run).toHaveNoLeaks()
  expect(run).toHaveNoLeaks({ kinds: ['possible'] })
  expect(run).not.toHaveNoLeaks()
  expect(run.test('parse_empty')).toAllocateAtMost({ allocations: 10, bytes: 4096 })
  expect(run.test('parse_big')).toPeakAtMost({ bytes: 1048576 })
  expect(run).toPeakAtMost({ bytes: 1048576, heapBytes: 2097152 })
  expect(run.test('parse_big')).toMatchAllocationSnapshot({ peak: true })
  expect(run.test('parse_big')).toMatchAllocationSnapshot({ peak: true }, 'with its peak')
  // @ts-expect-error: toPeakAtMost takes bytes and heapBytes
  expect(run).toPeakAtMost({ blocks: 1 })
  // @ts-expect-error: peak is a boolean
  expect(run).toMatchAllocationSnapshot({ peak: 'yes' })
  expect(run.test('parse_big')).toLeakAtMost({ blocks: 2 })
  expect(run.test('parse_big')).toMatchAllocationSnapshot()
  await expect(Promise.resolve(run)).resolves.toHaveNoLeaks()
  expect(run).toHaveNoMemoryErrors()
  expect(run.test('parse_big')).not.toHaveNoMemoryErrors({ kinds: ['invalid-free', 'mismatched-free'] })
  // @ts-expect-error: kinds is an array
  expect(run).toHaveNoMemoryErrors({ kinds: 'invalid-free' })

  // @ts-expect-error: not a leak kind
  expect(run).toHaveNoLeaks({ kinds: ['lost'] })
  // @ts-expect-error: toLeakAtMost takes bytes and blocks
  expect(run).toLeakAtMost({ allocations: 1 })
  // @ts-expect-error: toAllocateAtMost needs its limits
  expect(run).toAllocateAtMost()
})

describeNative(['./build/tests'])

// The reporter, as Jest constructs it from jest.config.js.
declare const globalConfig: import('@jest/reporters').Config.GlobalConfig
const reporter: import('@jest/reporters').Reporter = new HeapspecJestReporter(globalConfig, { outputDir: 'reports/heap', annotations: true })
// @ts-expect-error: outputDir is a path
new HeapspecJestReporter(globalConfig, { outputDir: 1 })
void reporter

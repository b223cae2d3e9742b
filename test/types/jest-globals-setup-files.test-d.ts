// Compile-only: a Jest user with @jest/globals who registers heapspec only in jest.config's
// setupFilesAfterEnv and types it with tsconfig's `"types": ["heapspec/jest"]`
// (tsconfig.jest-globals.json): no import of heapspec/jest here. Checked by types.test.ts.
import { expect, test } from '@jest/globals'
import { runNative } from 'heapspec'

test('types', async () => {
  const run = await runNative(['./build/tests'])
  expect(run).toHaveNoLeaks()
  expect(run.test('parse_empty')).toAllocateAtMost({ allocations: 10 })
  expect(run.test('parse_big')).toPeakAtMost({ bytes: 1048576 })
  expect(run.test('parse_big')).toLeakAtMost({ blocks: 2 })
  expect(run.test('parse_big')).toMatchAllocationSnapshot()
  await expect(Promise.resolve(run)).resolves.toHaveNoLeaks()
  // @ts-expect-error: not a leak kind
  expect(run).toHaveNoLeaks({ kinds: ['lost'] })
})

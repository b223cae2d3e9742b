// Compile-only: a Vitest user who registers heapspec only in vitest.config's setupFiles and types it
// with tsconfig's `"types": ["heapspec/vitest"]` (tsconfig.vitest-setup-files.json): no import of
// heapspec/vitest here. Checked by types.test.ts, which also checks that without that line it fails.
import { expect, test } from 'vitest'
import { runNative } from 'heapspec'

test('types', async () => {
  const run = await runNative(['./build/tests'])
  expect(run).toHaveNoLeaks()
  expect(run.test('parse_empty')).toAllocateAtMost({ allocations: 10 })
  expect(run.test('parse_big')).toPeakAtMost({ bytes: 1048576 })
  expect(run.test('parse_big')).toLeakAtMost({ bytes: 1024 })
  expect(run.test('parse_big')).toMatchAllocationSnapshot()
  // @ts-expect-error: not a leak kind
  expect(run).toHaveNoLeaks({ kinds: ['lost'] })
})

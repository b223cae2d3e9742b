// Compile-only: a Jest user on @types/jest's globals (no import of expect or test) who registers
// heapspec only in jest.config's setupFilesAfterEnv and types it with tsconfig's
// `"types": ["jest", "heapspec/jest"]` (tsconfig.jest-types-globals.json). Checked by types.test.ts.
import { runNative } from 'heapspec'

test('types', async () => {
  const run = await runNative(['./build/tests'])
  expect(run).toHaveNoLeaks()
  expect(run).not.toHaveNoLeaks({ kinds: ['definite'] })
  expect(run.test('parse_big')).toHaveNoMemoryErrors({ kinds: ['invalid-write'] })
  expect(run.test('parse_empty')).toAllocateAtMost({ allocations: 10, bytes: 4096 })
  expect(run.test('parse_big')).toPeakAtMost({ bytes: 1048576 })
  expect(run.test('parse_big')).toLeakAtMost({ bytes: 64, blocks: 1 })
  expect(run.test('parse_big')).toMatchAllocationSnapshot()
  await expect(Promise.resolve(run)).resolves.toHaveNoLeaks()
  // @ts-expect-error: toLeakAtMost takes bytes and blocks
  expect(run).toLeakAtMost({ allocations: 1 })
})

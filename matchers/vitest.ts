/**
 * Vitest registration: `import 'heapspec/vitest'` (or `setupFiles: ['heapspec/vitest']`) adds
 * heapspec's matchers to Vitest's expect and types them. With it only in setupFiles, tsconfig's
 * `"types": ["heapspec/vitest"]` (or `/// <reference types="heapspec/vitest" />`) brings the types in.
 */
import * as vitest from 'vitest'
import { beforeAll, describe, expect, it } from 'vitest'
import { describeNative as describeNativeWith, type DescribeNativeOptions } from '../src/describe-native.js'
import { heapMatchers } from './index.js'
import { createToMatchAllocationSnapshot } from './to-match-allocation-snapshot.js'
import type { HeapMatchers, HeapMatcherResult } from './types.js'
// Files the runs each test makes or checks in its task.meta, for heapspec/reporter/vitest.
import './record-vitest.js'
// Types task.meta.heapspec (Vitest's TaskMeta) wherever heapspec/vitest is imported.
export type { HeapspecTaskMeta } from './task-meta.js'

declare module 'vitest' {
  // The same type parameters as Vitest's own declaration, so the two merge.
  interface Matchers<T = any> extends HeapMatchers<T> {}
}

type VitestMatcherState = ThisParameterType<typeof vitest.Snapshots.toMatchSnapshot>

// Vitest's composable snapshot matcher: the counts go to the test file's .snap, and -u and CI mode apply.
const toMatchAllocationSnapshot = createToMatchAllocationSnapshot((context, counts, hint) => {
  // A namespace import, so that Vitest 4.0 (without Snapshots) gets this message rather than a link error.
  const { Snapshots } = vitest as Partial<typeof vitest>
  if (typeof Snapshots?.toMatchSnapshot !== 'function') {
    throw new Error('heapspec: toMatchAllocationSnapshot needs Vitest 4.1 or later (Snapshots.toMatchSnapshot); upgrade vitest.')
  }
  const state = context as VitestMatcherState
  return (hint === undefined ? Snapshots.toMatchSnapshot.call(state, counts) : Snapshots.toMatchSnapshot.call(state, counts, hint)) as HeapMatcherResult
})

expect.extend({ ...heapMatchers, toMatchAllocationSnapshot })

/**
 * `describeNative` with Vitest's describe, it, beforeAll and expect (no `globals: true` needed).
 * @example describeNative(['./build/tests'])
 */
export function describeNative(command: string[], options?: DescribeNativeOptions): void {
  describeNativeWith(command, options, { describe, it, beforeAll, expect })
}

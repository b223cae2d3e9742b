/**
 * Jest registration: `setupFilesAfterEnv: ['heapspec/jest']` adds heapspec's matchers to Jest's
 * expect and types them for `@jest/globals` (the `expect` package's Matchers) and for @types/jest's
 * globals. With it only in jest.config's setupFilesAfterEnv, tsconfig's `"types": ["heapspec/jest"]`
 * (or `/// <reference types="heapspec/jest" />`) brings the types in.
 */
import { toMatchSnapshot } from 'jest-snapshot'
import { describeNative as describeNativeWith, type DescribeNativeOptions, type TestFrameworkApi } from '../src/describe-native.js'
import { HeapspecError } from '../src/errors.js'
import { heapMatchers } from './index.js'
import { createToMatchAllocationSnapshot } from './to-match-allocation-snapshot.js'
import { recordRunsForJest, type JestHooks } from './record-jest.js'
import type { HeapMatchers, HeapMatcherResult } from './types.js'

declare module 'expect' {
  interface Matchers<R extends void | Promise<void>, T = unknown> extends HeapMatchers<R> {}
}

// Jest's globals as @types/jest declares them (`expect` without an import); the same type
// parameters as its declaration, so the two merge. Without @types/jest it is an unused namespace.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R, T = {}> extends HeapMatchers<R> {}
  }
}

type JestSnapshotContext = ThisParameterType<typeof toMatchSnapshot>

/** Jest's globals, present in setupFilesAfterEnv and test files unless `injectGlobals: false`. */
function jestGlobals(): TestFrameworkApi & { expect: { extend(matchers: object): void } } {
  const g = globalThis as unknown as Partial<TestFrameworkApi & { expect: { extend(matchers: object): void } }>
  if (typeof g.expect?.extend !== 'function' || typeof g.describe !== 'function' || typeof g.it !== 'function' || typeof g.beforeAll !== 'function') {
    throw new HeapspecError(
      "heapspec: heapspec/jest found no Jest globals. Load it with setupFilesAfterEnv: ['heapspec/jest'] (not setupFiles), and keep injectGlobals on; " +
        "otherwise call expect.extend(heapMatchers) from 'heapspec/matchers' yourself.",
    )
  }
  return g as TestFrameworkApi & { expect: { extend(matchers: object): void } }
}

// jest-snapshot's own matcher: the counts go to the test file's __snapshots__/*.snap, and -u and --ci apply.
// jest-snapshot reads an explicit `undefined` as property matchers: pass the hint only when given.
const toMatchAllocationSnapshot = createToMatchAllocationSnapshot(
  (context, counts, hint) =>
    (hint === undefined ? toMatchSnapshot.call(context as JestSnapshotContext, counts) : toMatchSnapshot.call(context as JestSnapshotContext, counts, hint)) as HeapMatcherResult,
)

jestGlobals().expect.extend({ ...heapMatchers, toMatchAllocationSnapshot })
// Files the runs each test makes or checks for heapspec/reporter/jest, when it runs.
recordRunsForJest(globalThis as unknown as JestHooks)

/**
 * `describeNative` with Jest's describe, it, beforeAll and expect.
 * @example describeNative(['./build/tests'])
 */
export function describeNative(command: string[], options?: DescribeNativeOptions): void {
  describeNativeWith(command, options, jestGlobals())
}

/** heapspec's matchers, for `expect.extend` in any framework (registration: heapspec/vitest, heapspec/jest). */
import { toAllocateAtMost } from './to-allocate-at-most.js'
import { toHaveNoLeaks } from './to-have-no-leaks.js'
import { toHaveNoMemoryErrors } from './to-have-no-memory-errors.js'
import { toLeakAtMost } from './to-leak-at-most.js'
import { toPeakAtMost } from './to-peak-at-most.js'

export { toHaveNoLeaks, toLeakAtMost, toAllocateAtMost, toHaveNoMemoryErrors, toPeakAtMost }
export { allocationSnapshot, createToMatchAllocationSnapshot, type FrameworkSnapshot } from './to-match-allocation-snapshot.js'
export { toSubject, type HeapSubject } from './subject.js'
export type * from './types.js'

/** The matchers that need nothing from the framework; the snapshot matcher is made per framework. */
export const heapMatchers = { toHaveNoLeaks, toLeakAtMost, toAllocateAtMost, toHaveNoMemoryErrors, toPeakAtMost }

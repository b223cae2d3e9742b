import { BadOptionError } from '../src/errors.js'
import { announceCheck } from '../src/run-events.js'
import { shortValue, toSubject, type HeapSubject } from './subject.js'
import type { AllocationSnapshot, HeapMatcherContext, HeapMatcherFn, HeapMatcherResult } from './types.js'

const NAME = 'toMatchAllocationSnapshot'

/** The framework's own snapshot matcher, called with the matcher's context: Vitest's or jest-snapshot's. */
export type FrameworkSnapshot = (context: HeapMatcherContext, counts: AllocationSnapshot, hint: string | undefined) => HeapMatcherResult

/** The counts a snapshot pins: totals and the failing kinds' leaks, in a fixed, readable shape. */
export function allocationSnapshot(subject: Pick<HeapSubject, 'totals' | 'leakSummary'>): AllocationSnapshot {
  const { allocations, frees, bytesAllocated } = subject.totals
  const amount = (kind: 'definite' | 'indirect' | 'possible') => ({ bytes: subject.leakSummary[kind].bytes, blocks: subject.leakSummary[kind].blocks })
  return { allocations, frees, bytesAllocated, leaked: { definite: amount('definite'), indirect: amount('indirect'), possible: amount('possible') } }
}

/**
 * `toMatchAllocationSnapshot(hint?)` over a framework's snapshot matcher, so the counts live in that
 * framework's snapshot file and obey its update flag (-u) and CI mode.
 * @example expect.extend({ toMatchAllocationSnapshot: createToMatchAllocationSnapshot((ctx, counts, hint) => Snapshots.toMatchSnapshot.call(ctx, counts, hint)) })
 */
export function createToMatchAllocationSnapshot(frameworkSnapshot: FrameworkSnapshot): HeapMatcherFn {
  return function toMatchAllocationSnapshot(this: HeapMatcherContext, received: unknown, hint?: unknown): HeapMatcherResult {
    const subject = toSubject(received, NAME)
    announceCheck(received, this)
    if (hint !== undefined && typeof hint !== 'string') {
      throw new BadOptionError(`Expected the hint of ${NAME} to be a string, got ${shortValue(hint)}.`)
    }
    // A snapshot either matches or is rewritten with -u; "does not match" pins nothing.
    if (this?.isNot) throw new BadOptionError(`${NAME} cannot be used with .not: a snapshot matches or is updated with -u. For a bound, use toAllocateAtMost or toLeakAtMost.`)
    const result = frameworkSnapshot(this, allocationSnapshot(subject), hint)
    // The frameworks' messages name their own matcher; name the one the user called.
    return { ...result, message: () => result.message().replace('toMatchSnapshot', NAME) }
  }
}

import { BadOptionError } from '../src/errors.js'
import { announceCheck } from '../src/run-events.js'
import { shortValue, toSubject, type HeapSubject } from './subject.js'
import { requirePeak } from './to-peak-at-most.js'
import type { AllocationSnapshot, HeapMatcherContext, HeapMatcherFn, HeapMatcherResult } from './types.js'

const NAME = 'toMatchAllocationSnapshot'

/** The framework's own snapshot matcher, called with the matcher's context: Vitest's or jest-snapshot's. */
export type FrameworkSnapshot = (context: HeapMatcherContext, counts: AllocationSnapshot, hint: string | undefined) => HeapMatcherResult

/**
 * The counts a snapshot pins: totals and the failing kinds' leaks, in a fixed, readable shape; with
 * `peak`, the high-water marks too (no sites: stacks change with every edit of the code).
 */
export function allocationSnapshot(subject: Pick<HeapSubject, 'totals' | 'leakSummary'> & Partial<HeapSubject>, { peak = false }: { peak?: boolean } = {}): AllocationSnapshot {
  const { allocations, frees, bytesAllocated } = subject.totals
  const amount = (kind: 'definite' | 'indirect' | 'possible') => ({ bytes: subject.leakSummary[kind].bytes, blocks: subject.leakSummary[kind].blocks })
  const counts: AllocationSnapshot = { allocations, frees, bytesAllocated, leaked: { definite: amount('definite'), indirect: amount('indirect'), possible: amount('possible') } }
  if (!peak) return counts
  const found = requirePeak(subject as HeapSubject, NAME)
  return { ...counts, peak: subject.testName === null ? { bytes: found.bytes } : { bytes: found.bytes, heapBytes: found.heapBytes } }
}

/** The arguments `(hint?)` or `(options, hint?)`, validated. */
function snapshotArguments(first: unknown, second: unknown): { peak: boolean; hint: string | undefined } {
  let options: Record<string, unknown> = {}
  let hint = first
  if (typeof first === 'object' && first !== null && !Array.isArray(first)) {
    options = first as Record<string, unknown>
    hint = second
    for (const key of Object.keys(options)) if (key !== 'peak') throw new BadOptionError(`Unknown option \`${key}\` of ${NAME}. Known options: peak.`)
    if (options.peak !== undefined && typeof options.peak !== 'boolean') throw new BadOptionError(`Expected the \`peak\` option of ${NAME} to be a boolean, got ${shortValue(options.peak)}.`)
  }
  if (hint !== undefined && typeof hint !== 'string') {
    throw new BadOptionError(`Expected the hint of ${NAME} to be a string, got ${shortValue(hint)}.`)
  }
  return { peak: options.peak === true, hint }
}

/**
 * `toMatchAllocationSnapshot(hint?)` over a framework's snapshot matcher, so the counts live in that
 * framework's snapshot file and obey its update flag (-u) and CI mode.
 * @example expect.extend({ toMatchAllocationSnapshot: createToMatchAllocationSnapshot((ctx, counts, hint) => Snapshots.toMatchSnapshot.call(ctx, counts, hint)) })
 */
export function createToMatchAllocationSnapshot(frameworkSnapshot: FrameworkSnapshot): HeapMatcherFn {
  return function toMatchAllocationSnapshot(this: HeapMatcherContext, received: unknown, first?: unknown, second?: unknown): HeapMatcherResult {
    const subject = toSubject(received, NAME)
    announceCheck(received, this)
    const { peak, hint } = snapshotArguments(first, second)
    // A snapshot either matches or is rewritten with -u; "does not match" pins nothing.
    if (this?.isNot) throw new BadOptionError(`${NAME} cannot be used with .not: a snapshot matches or is updated with -u. For a bound, use toAllocateAtMost, toLeakAtMost or toPeakAtMost.`)
    const result = frameworkSnapshot(this, allocationSnapshot(subject, { peak }), hint)
    // The frameworks' messages name their own matcher; name the one the user called.
    return { ...result, message: () => result.message().replace('toMatchSnapshot', NAME) }
  }
}

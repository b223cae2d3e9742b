import { announceCheck } from '../src/run-events.js'
import { exactBytes, failure, limitsOption, limitsPhrase, matcherHint, plural } from './format.js'
import { toSubject } from './subject.js'
import type { HeapMatcherContext, HeapMatcherResult } from './types.js'

const NAME = 'toAllocateAtMost'

/**
 * Passes when the allocation totals stay within the limits (counted as memcheck counts them).
 * @example expect(run.test('parse_empty')).toAllocateAtMost({ allocations: 10, bytes: 4096 })
 */
export function toAllocateAtMost(this: HeapMatcherContext, received: unknown, limits?: unknown): HeapMatcherResult {
  const subject = toSubject(received, NAME)
  announceCheck(received, this)
  const given = limitsOption(limits, NAME, ['allocations', 'bytes'] as const)
  const { allocations, bytesAllocated } = subject.totals
  const within = (given.allocations === undefined || allocations <= given.allocations) && (given.bytes === undefined || bytesAllocated <= given.bytes)
  const isNot = Boolean(this?.isNot)
  return {
    pass: within,
    message: () => {
      const limit = limitsPhrase(isNot, [
        [given.allocations, (n) => plural(n, 'allocation')],
        [given.bytes, (n) => `${exactBytes(n)} allocated`],
      ])
      const found = `found ${plural(allocations, 'allocation')} of ${exactBytes(bytesAllocated)} (${plural(subject.totals.frees, 'free')}) in ${subject.where}.`
      return failure(matcherHint(NAME, subject, isNot, [limits]), [`Expected ${limit}, ${found}`])
    },
  }
}

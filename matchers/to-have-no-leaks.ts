import { announceCheck } from '../src/run-events.js'
import { exactAmount, failure, humanBytes, isDefaultKinds, kindsOnlyOptions, kindsOption, kindsPhrase, leakedAmount, matcherHint, plural, recordLines, recordsOf } from './format.js'
import { toSubject } from './subject.js'
import type { HeapMatcherContext, HeapMatcherResult } from './types.js'

const NAME = 'toHaveNoLeaks'

/**
 * Passes when the run or test case leaked nothing of the failing kinds.
 * @example expect(run).toHaveNoLeaks({ kinds: ['definite'] })
 */
export function toHaveNoLeaks(this: HeapMatcherContext, received: unknown, options?: unknown): HeapMatcherResult {
  const subject = toSubject(received, NAME)
  const kinds = kindsOption(kindsOnlyOptions(options, NAME), NAME)
  const leaked = leakedAmount(subject, kinds)
  const isNot = Boolean(this?.isNot)
  // the reporters learn which leaks the test allowed and which failed it
  announceCheck(received, this, { passed: leaked.blocks === 0 !== isNot, kinds })
  const hint = (): string => matcherHint(NAME, subject, isNot, options === undefined ? [] : [options])
  const which = isDefaultKinds(kinds) ? 'leaks' : `${kindsPhrase(kinds)} leaks`
  return {
    pass: leaked.blocks === 0 && subject.incomplete === undefined,
    message: () => {
      if (isNot) return failure(hint(), [`Expected ${which}, found none in ${subject.where}.`])
      if (subject.incomplete !== undefined) return failure(hint(), [`Expected no ${which}, but heapspec could not see the whole run of ${subject.where}: ${subject.incomplete}.`])
      const records = recordsOf(subject.leaks, kinds)
      const found = records.length > 0 ? `${plural(records.length, 'leak')} (${humanBytes(leaked.bytes)})` : exactAmount(leaked)
      const body = [`Expected no ${which}, found ${found} in ${subject.where}:`, ...recordLines(records, subject)]
      return failure(hint(), body)
    },
  }
}

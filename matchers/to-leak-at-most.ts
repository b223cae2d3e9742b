import { announceCheck } from '../src/run-events.js'
import { exactAmount, exactBytes, failure, isDefaultKinds, kindsOption, kindsPhrase, leakedAmount, limitsOption, matcherHint, plural, recordLines, recordsOf } from './format.js'
import { toSubject } from './subject.js'
import type { HeapMatcherContext, HeapMatcherResult } from './types.js'

const NAME = 'toLeakAtMost'

/**
 * Passes when the failing kinds leaked no more than the given bytes and blocks.
 * @example expect(run.test('parse_big')).toLeakAtMost({ bytes: 1024, blocks: 2 })
 */
export function toLeakAtMost(this: HeapMatcherContext, received: unknown, limits?: unknown): HeapMatcherResult {
  const subject = toSubject(received, NAME)
  const given = limitsOption(limits, NAME, ['bytes', 'blocks'] as const, ['kinds'])
  const kinds = kindsOption(given.kinds, NAME)
  const leaked = leakedAmount(subject, kinds)
  const within = (given.bytes === undefined || leaked.bytes <= given.bytes) && (given.blocks === undefined || leaked.blocks <= given.blocks)
  const isNot = Boolean(this?.isNot)
  // the reporters learn which leaks the test allowed and which failed it
  announceCheck(received, this, { passed: within !== isNot, kinds })
  return {
    pass: within && subject.incomplete === undefined,
    message: () => {
      if (subject.incomplete !== undefined && !isNot) {
        return failure(matcherHint(NAME, subject, isNot, [limits]), [`heapspec could not see the whole run of ${subject.where}: ${subject.incomplete}.`])
      }
      const words = isNot ? 'more than' : 'at most'
      const parts = [given.bytes === undefined ? undefined : `${words} ${exactBytes(given.bytes)}`, given.blocks === undefined ? undefined : `${words} ${plural(given.blocks, 'block')}`]
      const limit = parts.filter(Boolean).join(isNot ? ' or ' : ' and ')
      const which = isDefaultKinds(kinds) ? '' : ` (${kindsPhrase(kinds)})`
      const records = recordsOf(subject.leaks, kinds)
      const found = `found ${exactAmount(leaked)} in ${subject.where}`
      const body = records.length > 0 ? [`Expected ${limit} to leak${which}, ${found}:`, ...recordLines(records, subject)] : [`Expected ${limit} to leak${which}, ${found}.`]
      return failure(matcherHint(NAME, subject, isNot, [limits]), body)
    },
  }
}

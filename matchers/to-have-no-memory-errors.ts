import { announceCheck } from '../src/run-events.js'
import { MAX_RECORDS, errorKindsOption, errorLines, errorsOf, failure, kindsOnlyOptions, kindsPhrase, matcherHint, plural } from './format.js'
import { toSubject } from './subject.js'
import type { HeapMatcherContext, HeapMatcherResult } from './types.js'

const NAME = 'toHaveNoMemoryErrors'

/**
 * Passes when the run or test case made no memory errors of the failing kinds (by default every
 * kind: invalid frees, mismatched frees, invalid reads and writes, uninitialised values, ...).
 * @example expect(run.test('parses header')).toHaveNoMemoryErrors({ kinds: ['invalid-free'] })
 */
export function toHaveNoMemoryErrors(this: HeapMatcherContext, received: unknown, options?: unknown): HeapMatcherResult {
  const subject = toSubject(received, NAME)
  const kinds = errorKindsOption(kindsOnlyOptions(options, NAME), NAME)
  const errors = errorsOf(subject.errors, kinds)
  const isNot = Boolean(this?.isNot)
  announceCheck(received, this)
  const hint = (): string => matcherHint(NAME, subject, isNot, options === undefined ? [] : [options])
  const which = kinds === undefined ? 'memory errors' : `${kindsPhrase(kinds)} errors`
  return {
    // a run heapspec could not see whole never reads as clean
    pass: errors.length === 0 && subject.incomplete === undefined,
    message: () => {
      if (isNot) return failure(hint(), [`Expected ${which}, found none in ${subject.where}.`])
      if (subject.incomplete !== undefined) return failure(hint(), [`Expected no ${which}, but heapspec could not see the whole run of ${subject.where}: ${subject.incomplete}.`])
      const body = [`Expected no ${which}, found ${plural(errors.length, 'error')} in ${subject.where}:`, ...errors.slice(0, MAX_RECORDS).flatMap((e) => errorLines(e, subject))]
      if (errors.length > MAX_RECORDS) body.push(`  ...and ${errors.length - MAX_RECORDS} more`)
      return failure(hint(), body)
    },
  }
}

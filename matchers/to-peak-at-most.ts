import { HeapspecError } from '../src/errors.js'
import { announceCheck } from '../src/run-events.js'
import { allocationSite, exactBytes, failure, humanBytes, limitsOption, limitsPhrase, matcherHint, MAX_RECORDS, plural } from './format.js'
import { toSubject, type HeapSubject, type SubjectPeak } from './subject.js'
import type { HeapMatcherContext, HeapMatcherResult } from './types.js'

const NAME = 'toPeakAtMost'

/**
 * The subject's peaks, or a clear error: valgrind keeps none (memcheck has no high-water mark), nor
 * does a Node addon's run under preload (every object's blocks share the heap).
 */
export function requirePeak(subject: HeapSubject, matcher: string): SubjectPeak {
  if (subject.peak) return subject.peak
  const backend = subject.backend ? ` (backend: ${subject.backend})` : ''
  throw new HeapspecError(
    `heapspec: ${matcher} found no peak figures in ${subject.where}${backend}. The valgrind backend keeps none (memcheck has no high-water mark), ` +
      "nor does runNode's `objects` under preload; run it with backend: 'preload' or 'gdb'.",
  )
}

/**
 * `  - 768.0 KiB in 3 blocks, allocated at make_chunk (peaks.c:29) <- main (peaks.c:90)`, then what
 * the sites listed leave out. Sites that read alike (calls from one line: `push(push(x))`) are one line.
 */
function siteLines(peak: SubjectPeak): string[] {
  const byText = new Map<string, { bytes: number; blocks: number }>()
  for (const s of peak.sites) {
    const where = allocationSite(s.stack)
    const seen = byText.get(where)
    if (seen) {
      seen.bytes += s.bytes
      seen.blocks += s.blocks
    } else byText.set(where, { bytes: s.bytes, blocks: s.blocks })
  }
  const sorted = [...byText].sort(([, a], [, b]) => b.bytes - a.bytes || b.blocks - a.blocks)
  const lines = sorted.map(([where, s]) => `  - ${humanBytes(s.bytes)} in ${plural(s.blocks, 'block')}, allocated at ${where}`)
  const named = peak.sites.reduce((sum, s) => sum + s.bytes, 0)
  if (peak.sites.length >= MAX_RECORDS && named < peak.bytes) lines.push(`  ...and ${humanBytes(peak.bytes - named)} from other sites`)
  return lines
}

/**
 * Passes when the high-water mark of live heap stays within the limits: for a test case, `bytes`
 * is the most its own blocks held at once and `heapBytes` the whole heap's most while it ran (a
 * fixture made before it too); for a run both are the run's peak.
 * @example expect(run.test('parse_big')).toPeakAtMost({ bytes: 1024 * 1024 })
 */
export function toPeakAtMost(this: HeapMatcherContext, received: unknown, limits?: unknown): HeapMatcherResult {
  const subject = toSubject(received, NAME)
  announceCheck(received, this)
  const given = limitsOption(limits, NAME, ['bytes', 'heapBytes'] as const)
  const peak = requirePeak(subject, NAME)
  const within = (given.bytes === undefined || peak.bytes <= given.bytes) && (given.heapBytes === undefined || peak.heapBytes <= given.heapBytes)
  const isNot = Boolean(this?.isNot)
  return {
    pass: within,
    message: () => {
      const limit = limitsPhrase(isNot, [
        [given.bytes, (n) => `${exactBytes(n)} live at once`],
        [given.heapBytes, (n) => `${exactBytes(n)} live in the whole heap`],
      ])
      const heap = subject.testName === null ? '' : ` (the whole heap's: ${exactBytes(peak.heapBytes)})`
      const body = [`Expected a peak of ${limit}, found ${exactBytes(peak.bytes)} live at once in ${subject.where}${heap}.`]
      if (peak.sites.length > 0) body.push(`Live at ${subject.testName === null ? 'the' : 'its'} peak:`, ...siteLines(peak))
      return failure(matcherHint(NAME, subject, isNot, [limits]), body)
    },
  }
}

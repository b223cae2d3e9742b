import { isAbsolute, relative } from 'node:path'
import { BadOptionError } from '../src/errors.js'
import { LEAK_KINDS, type HeapTotals, type LeakRecord, type LeakSummary, type MemoryError, type PeakSite, type RunJson } from '../src/model/types.js'

/** What a matcher checks, whichever form it was given in: a whole run or one test case's slice. */
export interface HeapSubject {
  /** `run` or `run.test("name")`, for the matcher hint. */
  expression: string
  /** `test "name"` or the program's command, for "found ... in <where>". */
  where: string
  /** Set for a test case's slice. */
  testName: string | null
  totals: HeapTotals
  leakSummary: LeakSummary
  /** The loss records of the run, or of the test case. */
  leaks: LeakRecord[]
  /** The memory errors of the run, or of the test case. */
  errors: MemoryError[]
  /** Why heapspec could not see the whole run: no leak verdict holds then. */
  incomplete: string | undefined
  /**
   * The high-water marks of live heap, when the backend keeps them: a test case's own blocks'
   * (`bytes`) and the whole heap's while it ran (`heapBytes`); for a run both are the run's peak.
   */
  peak: SubjectPeak | undefined
  /** The backend that made the run, when known (for "no peak under valgrind"). */
  backend: string | undefined
}

/** A subject's peaks, with the sites live at `bytes`. */
export interface SubjectPeak {
  bytes: number
  heapBytes: number
  sites: PeakSite[]
}

type Loose = Record<string, unknown>

function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
}

function isTotals(value: unknown): value is HeapTotals {
  return isObject(value) && isCount(value.allocations) && isCount(value.frees) && isCount(value.bytesAllocated)
}

function isLeakSummary(value: unknown): value is LeakSummary {
  return isObject(value) && LEAK_KINDS.every((kind) => isObject(value[kind]) && isCount((value[kind] as Loose).bytes) && isCount((value[kind] as Loose).blocks))
}

function isPeak(value: unknown): value is { bytes: number; heapBytes?: number; sites: PeakSite[] } {
  return isObject(value) && isCount(value.bytes) && (value.heapBytes === undefined || isCount(value.heapBytes)) && Array.isArray(value.sites)
}

function isRunJson(value: unknown): value is RunJson {
  return isObject(value) && value.schema === 1 && isTotals(value.totals) && isLeakSummary(value.leakSummary) && Array.isArray(value.leaks) && Array.isArray(value.tests)
}

/** The program as the user typed it, relative to the working directory when inside it. */
function programWords(run: RunJson): string {
  const [program = '?', ...args] = run.program?.command ?? []
  const rel = relative(process.cwd(), program)
  const shown = isAbsolute(program) && rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : program
  return [shown, ...args].join(' ')
}

/** A value in a misuse message, kept to one short line. */
export function shortValue(value: unknown): string {
  if (typeof value === 'string') return `\`${value}\` (string)`
  if (value === null || value === undefined) return `\`${String(value)}\``
  if (typeof value === 'function') return `a function`
  if (typeof value !== 'object') return `\`${String(value)}\` (${typeof value})`
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  if (text.length > 80) text = `${text.slice(0, 77)}...`
  const what = Array.isArray(value) ? 'array' : value.constructor && value.constructor !== Object ? value.constructor.name : 'object'
  return `\`${text}\` (${what})`
}

/**
 * The received value as a subject: a `HeapRun` (or anything with a run JSON as `.json`), a test
 * case from `run.test(name)`, or a run JSON (schema 1). Checked by shape, not class, so a run made
 * by the CommonJS build passes a matcher registered by the ESM build and the other way round.
 */
export function toSubject(received: unknown, matcher: string): HeapSubject {
  if (isObject(received)) {
    const json = isRunJson(received) ? received : isRunJson(received.json) ? received.json : undefined
    if (json) {
      return {
        expression: 'run',
        where: programWords(json),
        testName: null,
        totals: json.totals,
        leakSummary: json.leakSummary,
        leaks: json.leaks,
        errors: Array.isArray(json.errors) ? json.errors : [],
        incomplete: typeof json.incomplete === 'string' ? json.incomplete : undefined,
        peak: isPeak(json.peak) ? { bytes: json.peak.bytes, heapBytes: json.peak.bytes, sites: json.peak.sites } : undefined,
        backend: typeof json.backend === 'string' ? json.backend : undefined,
      }
    }
    if (typeof received.name === 'string' && isTotals(received.totals) && isLeakSummary(received.leakSummary) && Array.isArray(received.leaks)) {
      return {
        expression: `run.test(${JSON.stringify(received.name)})`,
        where: `test ${JSON.stringify(received.name)}`,
        testName: received.name,
        totals: received.totals,
        leakSummary: received.leakSummary,
        leaks: received.leaks as LeakRecord[],
        // a slice made by a heapspec without memory errors has none to show
        errors: Array.isArray(received.errors) ? (received.errors as MemoryError[]) : [],
        incomplete: typeof received.incomplete === 'string' ? received.incomplete : undefined,
        peak: isPeak(received.peak) ? { bytes: received.peak.bytes, heapBytes: received.peak.heapBytes ?? received.peak.bytes, sites: received.peak.sites } : undefined,
        backend: undefined,
      }
    }
  }
  throw new BadOptionError(
    `Expected the received value of ${matcher} to be a heap run (from runNative), a test case (from run.test(name)) or a run JSON (schema 1), got ${shortValue(received)}.`,
  )
}

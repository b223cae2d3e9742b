import type { MemoryError } from '../../model/types.js'
import { stripPid } from './block-list.js'

/** memcheck's error counters at one test-case boundary (`v.info n_errs_found`). */
export interface ErrorCounts {
  /** Errors found so far, every occurrence (leak searches add nothing to it). */
  found: number
  /** Errors shown so far, each distinct error once, at the boundary's start: a leak search also shows loss records. */
  shown: number
  /** The same after the boundary's own leak search. */
  shownEnd: number
}

/** One interval between two boundaries: who ran in it, and what memcheck counted in it. */
interface Interval {
  /** The test case running (an index into the test cases; -1: none). */
  test: number
  /** Distinct errors memcheck showed first in it: the next ones of its XML, in order. */
  shown: number
  /** Errors found in it, repeats of earlier ones included. */
  found: number
  /** Each distinct error's count so far at its end, when errors shown before happened again in it. */
  counts: Map<string, number> | undefined
}

/** An error as `v.info all_errors` and the XML both tell it apart: its words and its stack's program counters. */
function errorKey(what: string, pcs: string[]): string {
  return `${what}\0${pcs.join(',')}`
}

/** The same key for an error read from the XML (its stack starts at the replacement function's caller). */
function keyOf(error: MemoryError): string {
  return errorKey(error.what ?? '', error.stack.map((f) => f.pc ?? ''))
}

/** A frame of valgrind's replacement code, as the text output names it (the XML reader drops these too). */
const REPLACEMENT = /vgpreload_|vg_replace_malloc\.c/

/**
 * `v.info all_errors`'s text: each distinct error's count so far, by key. memcheck lists each as
 * "N errors in context I of M:", its words, then its stack (`at 0x...:`, `by 0x...:`).
 */
export function parseAllErrors(text: string): Map<string, number> {
  const lines = text.split('\n').map((l) => stripPid(l))
  const counts = new Map<string, number>()
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\d+) errors? in context \d+ of \d+:$/.exec(lines[i]!.trim())
    if (!m) continue
    const what = (lines[i + 1] ?? '').trim()
    const pcs: string[] = []
    for (let j = i + 2; j < lines.length; j++) {
      const frame = /^\s*(?:at|by) (0x[0-9A-Fa-f]+): (.*)$/.exec(lines[j]!)
      if (!frame) break
      if (pcs.length === 0 && REPLACEMENT.test(frame[2]!)) continue
      pcs.push(frame[1]!.toLowerCase())
    }
    const key = errorKey(what, pcs)
    counts.set(key, (counts.get(key) ?? 0) + Number(m[1]))
  }
  return counts
}

/** The run's errors with the test case each happened in first, and each test case's own. */
export interface AttributedErrors {
  /** memcheck's errors in its order, `test` the test case that made each first. */
  errors: MemoryError[]
  /** Each test case's errors (by index), each once, `count` the times it happened there. */
  byTest: Map<number, MemoryError[]>
  /** The error of memcheck's list each of `byTest`'s stands for. */
  origin: Map<MemoryError, MemoryError>
  /** What could not be tied to a test case, for the run's warnings. */
  problems: string[]
}

/**
 * Ties memcheck's errors to the test cases that made them. memcheck reports an error the moment
 * the program makes it, on whichever thread (valgrind runs one thread at a time), and its XML lists
 * the distinct errors in that order; at each test-case boundary the program stands still while gdb
 * reads memcheck's counters. So the errors shown between two boundaries are the next ones of the
 * XML, made by the test case that ran between them. A repeat of an error shown before is only
 * counted: where one happened, `v.info all_errors`'s counts at that boundary tell which it was.
 */
export class ErrorAttribution {
  private readonly intervals: Interval[] = []
  private last = { found: 0, shown: 0 }

  /** A boundary: `test` ran since the last one; `allErrors` is `v.info all_errors`'s text, when gdb read it. */
  point(test: number, counts: ErrorCounts, allErrors: string | undefined): void {
    this.intervals.push({
      test,
      shown: counts.shown - this.last.shown,
      found: counts.found - this.last.found,
      counts: allErrors === undefined ? undefined : parseAllErrors(allErrors),
    })
    this.last = { found: counts.found, shown: counts.shownEnd }
  }

  /**
   * `errors` (memcheck's XML, in its order, with each one's total `count`) tied to test cases:
   * `after` ran since the last boundary (-1: none, or the boundaries stopped being read, so what
   * came after them is no test case's); `nameOf` names a test case by index.
   */
  assign(errors: MemoryError[], nameOf: (test: number) => string | null, after: number): AttributedErrors {
    const problems: string[] = []
    const keys = errors.map(keyOf)
    const seen = new Map<string, number>() // occurrences accounted for, by key
    const firstTest = errors.map(() => -1)
    const perTest = new Map<number, Map<number, number>>() // test -> error index -> count
    const add = (test: number, index: number, times: number): void => {
      if (test < 0 || times <= 0) return
      const own = perTest.get(test) ?? new Map<number, number>()
      own.set(index, (own.get(index) ?? 0) + times)
      perTest.set(test, own)
    }
    let next = 0
    let unresolved = 0
    for (const interval of this.intervals) {
      for (let i = 0; i < interval.shown && next < errors.length; i++, next++) {
        firstTest[next] = interval.test
        seen.set(keys[next]!, (seen.get(keys[next]!) ?? 0) + 1)
        add(interval.test, next, 1)
      }
      const repeats = interval.found - interval.shown
      if (repeats <= 0) continue
      let resolved = 0
      for (const [key, total] of interval.counts ?? []) {
        const extra = total - (seen.get(key) ?? 0)
        const index = keys.indexOf(key)
        if (extra <= 0 || index < 0) continue
        seen.set(key, total)
        add(interval.test, index, extra)
        resolved += extra
      }
      if (resolved !== repeats && interval.test >= 0) unresolved += repeats - resolved
    }
    for (; next < errors.length; next++) {
      firstTest[next] = after
      seen.set(keys[next]!, (seen.get(keys[next]!) ?? 0) + 1)
      add(after, next, 1)
    }
    // What memcheck counted beyond the boundaries' accounts happened after the last one.
    for (let i = 0; i < errors.length; i++) {
      const total = errors[i]!.count
      if (total === undefined) continue
      const rest = total - (seen.get(keys[i]!) ?? 0)
      if (rest > 0) add(after, i, rest)
      seen.set(keys[i]!, total)
    }
    if (unresolved > 0) {
      problems.push(`${unresolved} repeated memory errors inside test cases could not be matched to memcheck's errors; those test cases' error lists may be short`)
    }
    const byTest = new Map<number, MemoryError[]>()
    const origin = new Map<MemoryError, MemoryError>()
    for (const [test, own] of perTest) {
      const name = nameOf(test)
      byTest.set(
        test,
        [...own]
          .sort((a, b) => a[0] - b[0])
          .map(([index, count]) => {
            const copy = { ...errors[index]!, test: name, count }
            origin.set(copy, errors[index]!)
            return copy
          }),
      )
    }
    return { errors: errors.map((error, i) => ({ ...error, test: nameOf(firstTest[i]!) })), byTest, origin, problems }
  }
}

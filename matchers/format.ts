import { BadOptionError } from '../src/errors.js'
import { LEAK_KINDS, type Amount, type Frame, type LeakKind, type LeakRecord, type MemoryError, type MemoryErrorKind } from '../src/model/types.js'
import { FAILING_KINDS, formatFrame, humanBytes } from '../src/report/text.js'
import { isUserFrame } from '../src/report/user-frame.js'
import { shortValue, type HeapSubject } from './subject.js'

/** Most loss records a failure message lists before "...and N more". */
export const MAX_RECORDS = 10

/** Frames shown per record: the first in the user's code and the user's callers after it. */
const MAX_FRAMES = 3

/** `1,150` */
export function count(value: number): string {
  return value.toLocaleString('en-US')
}

/** `1 block`, `3 blocks` */
export function plural(value: number, word: string): string {
  return `${count(value)} ${word}${value === 1 ? '' : 's'}`
}

/** Exact bytes, for figures compared against a limit: `1,150 bytes`. */
export function exactBytes(value: number): string {
  return plural(value, 'byte')
}

/** Bytes for reading: `600 B`, `1.2 KiB`, `3.0 MiB` (the reports' own). */
export { humanBytes }

/** `600 bytes in 3 blocks` */
export function exactAmount(amount: Amount): string {
  return `${exactBytes(amount.bytes)} in ${plural(amount.blocks, 'block')}`
}

/** A frame in the user's own code (shared with the reporters, which live on the same rule). */
export { isUserFrame }

/** Where a block was allocated: the first frame in the user's code and the user's frames after it. */
export function allocationSite(stack: Frame[]): string {
  const mine = stack.filter(isUserFrame)
  const shown = mine.length > 0 ? mine.slice(0, MAX_FRAMES) : stack.slice(0, 1)
  return shown.length > 0 ? shown.map(formatFrame).join(' <- ') : '(no stack recorded)'
}

/** The records of the given kinds, biggest first (records of equal size keep the backend's order). */
export function recordsOf(leaks: LeakRecord[], kinds: readonly LeakKind[]): LeakRecord[] {
  return leaks.filter((r) => kinds.includes(r.kind)).sort((a, b) => b.bytes - a.bytes)
}

/** `  - definite: 300 B in 1 block in test "x", allocated at make (definite.c:30) <- main (definite.c:46)` */
export function recordLine(record: LeakRecord, subject: HeapSubject): string {
  const inTest = subject.testName === null && record.test !== null ? ` in test ${JSON.stringify(record.test)}` : ''
  return `  - ${record.kind}: ${humanBytes(record.bytes)} in ${plural(record.blocks, 'block')}${inTest}, allocated at ${allocationSite(record.stack)}`
}

/**
 * One memory error: its kind, memcheck's words and count, where it was made, then its address's
 * story (where the block was allocated or freed) on lines of its own.
 * `  - invalid-read in test "x": Invalid read of size 4 at read_past_end (src/a.c:56) <- main (src/a.c:90)`
 */
export function errorLines(error: MemoryError, subject: HeapSubject): string[] {
  const inTest = subject.testName === null && error.test !== null ? ` in test ${JSON.stringify(error.test)}` : ''
  const times = error.count !== undefined && error.count > 1 ? ` (${plural(error.count, 'time')})` : ''
  const what = error.what ? `${error.what} ` : ''
  const story = (error.auxStacks ?? []).map(({ what: aux, stack }) => {
    if (stack.length === 0) return `      ${aux}`
    return `      ${aux}${/ at$/.test(aux) ? ' ' : ' at '}${allocationSite(stack)}`
  })
  return [`  - ${error.kind}${inTest}${times}: ${what}at ${allocationSite(error.stack)}`, ...story]
}

/** The errors of the given kinds (all kinds: `undefined`), in the order they were made. */
export function errorsOf(errors: MemoryError[], kinds: readonly MemoryErrorKind[] | undefined): MemoryError[] {
  return kinds === undefined ? errors : errors.filter((e) => kinds.includes(e.kind))
}

/** Validates the `kinds` option of an error matcher: a non-empty array of memcheck's kinds in kebab case; `undefined`: all. */
export function errorKindsOption(value: unknown, matcher: string): MemoryErrorKind[] | undefined {
  if (value === undefined) return undefined
  if (Array.isArray(value) && value.length > 0 && value.every((k) => typeof k === 'string' && /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(k))) return [...new Set(value as string[])]
  throw new BadOptionError(
    `Expected the \`kinds\` option of ${matcher} to be a non-empty array of memory error kinds in kebab case ("invalid-free", "mismatched-free", "invalid-read", "invalid-write", "uninitialised-value", "overlap", ...), got ${shortValue(value)}.`,
  )
}

/** At most MAX_RECORDS record lines, then "...and N more". */
export function recordLines(records: LeakRecord[], subject: HeapSubject): string[] {
  const lines = records.slice(0, MAX_RECORDS).map((r) => recordLine(r, subject))
  if (records.length > MAX_RECORDS) lines.push(`  ...and ${records.length - MAX_RECORDS} more`)
  return lines
}

/** The leaked amount of the given kinds, from the subject's leak summary. */
export function leakedAmount(subject: HeapSubject, kinds: readonly LeakKind[]): Amount {
  return kinds.reduce((sum, k) => ({ bytes: sum.bytes + subject.leakSummary[k].bytes, blocks: sum.blocks + subject.leakSummary[k].blocks }), { bytes: 0, blocks: 0 })
}

/** `definite, indirect or possible` */
export function kindsPhrase(kinds: readonly string[]): string {
  return kinds.length === 1 ? kinds[0]! : `${kinds.slice(0, -1).join(', ')} or ${kinds[kinds.length - 1]}`
}

/** Whether the kinds are the default failing ones (then the message need not name them). */
export function isDefaultKinds(kinds: readonly LeakKind[]): boolean {
  return kinds.length === FAILING_KINDS.length && FAILING_KINDS.every((k) => kinds.includes(k))
}

/**
 * The limits a failure names, each given as [limit, its words after "at most"/"more than"]:
 * `at most 2 allocations and at most 96 bytes allocated`, or under .not `more than ... or ...`.
 */
export function limitsPhrase(isNot: boolean, limits: [number | undefined, (limit: number) => string][]): string {
  const words = isNot ? 'more than' : 'at most'
  return limits
    .filter((l): l is [number, (limit: number) => string] => l[0] !== undefined)
    .map(([limit, what]) => `${words} ${what(limit)}`)
    .join(isNot ? ' or ' : ' and ')
}

/** A matcher's arguments as the user wrote them, for the hint: `{ bytes: 512 }`. */
function argText(value: unknown): string {
  if (value === undefined) return ''
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(argText).join(', ')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, v]) => `${k}: ${argText(v)}`).join(', ')} }`
  }
  return String(value)
}

/** The first line of a failure: `expect(run).not.toLeakAtMost({ bytes: 512 })`. */
export function matcherHint(matcher: string, subject: HeapSubject, isNot: boolean, args: unknown[] = []): string {
  return `expect(${subject.expression})${isNot ? '.not' : ''}.${matcher}(${args.map(argText).join(', ')})`
}

/** A failure message: the hint, a blank line, then the body. */
export function failure(hint: string, body: string[]): string {
  return [hint, '', ...body].join('\n')
}

/** Validates the options of a matcher whose only option is `kinds` (`{ kinds? }`); returns `kinds` as given. */
export function kindsOnlyOptions(options: unknown, matcher: string): unknown {
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new BadOptionError(`Expected the options of ${matcher} to be an object { kinds? }, got ${shortValue(options)}.`)
  }
  const given = (options ?? {}) as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (key !== 'kinds') throw new BadOptionError(`Unknown option \`${key}\` of ${matcher}. Known options: kinds.`)
  }
  return given.kinds
}

/** Validates a `kinds` option: a non-empty array of leak kinds, each once. */
export function kindsOption(value: unknown, matcher: string): LeakKind[] {
  if (value === undefined) return [...FAILING_KINDS]
  if (Array.isArray(value) && value.length > 0 && value.every((k) => (LEAK_KINDS as readonly unknown[]).includes(k))) return [...new Set(value as LeakKind[])]
  throw new BadOptionError(`Expected the \`kinds\` option of ${matcher} to be a non-empty array of ${LEAK_KINDS.map((k) => `"${k}"`).join(', ')}, got ${shortValue(value)}.`)
}

/**
 * Validates a limits object: known keys only, each a non-negative number, at least one of `limits`.
 * Returns the object with its limits typed.
 */
export function limitsOption<K extends string>(value: unknown, matcher: string, limits: readonly K[], extra: readonly string[] = []): Partial<Record<K, number>> & Record<string, unknown> {
  const shape = `{ ${limits.map((l) => `${l}?`).join(', ')} }`
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadOptionError(`Expected the argument of ${matcher} to be an object ${shape}, got ${shortValue(value)}.`)
  }
  const given = value as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (!(limits as readonly string[]).includes(key) && !extra.includes(key)) {
      throw new BadOptionError(`Unknown option \`${key}\` of ${matcher}. Known options: ${[...limits, ...extra].join(', ')}.`)
    }
  }
  for (const key of limits) {
    const v = given[key]
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
      throw new BadOptionError(`Expected the \`${key}\` limit of ${matcher} to be a non-negative number, got ${shortValue(v)}.`)
    }
  }
  if (limits.every((key) => given[key] === undefined)) {
    throw new BadOptionError(`Expected ${matcher} to be given at least one limit ${shape}, got ${shortValue(value)}.`)
  }
  return given as Partial<Record<K, number>> & Record<string, unknown>
}

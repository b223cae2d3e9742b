/**
 * How runs reach the reporters: runNative and describeNative announce each capture and each run
 * they make, the matchers announce each run they check, and a test framework's recorder (set up
 * by heapspec/vitest or heapspec/jest) observes these and files them where its reporter reads
 * them. Framework-neutral: nothing here knows Vitest or Jest.
 *
 * The registry lives on `globalThis` under a registered symbol, because one test file can load
 * heapspec twice (the ESM build and a CommonJS bundle): a run made by one copy and checked through
 * matchers registered by the other is still one run.
 */
import { randomUUID } from 'node:crypto'
import { reportRecords } from './model/run-records.js'
import type { LeakKind, RunJson } from './model/types.js'

/**
 * What a matcher made of the leaks it checked: `failed` (the assertion failed on them), `passed`
 * (it allowed them: `toLeakAtMost` within its limits, `.not.toHaveNoLeaks()`), or `seen` (a matcher
 * that judges no leaks looked at the run: `toAllocateAtMost`, `toMatchAllocationSnapshot`).
 */
export type CheckVerdict = 'failed' | 'passed' | 'seen'

/** A leak matcher's judgement, announced with its check: whether the assertion passed, on which kinds. */
export interface LeakJudgement {
  passed: boolean
  kinds: readonly LeakKind[]
}

/** A capture under way, for progress displays. */
export interface CaptureStart {
  /** Unique to this capture. */
  capture: string
  command: string[]
  /** The backend asked for, when the caller named one. */
  backend: string | null
  /** `Date.now()` when it started. */
  startedAt: number
}

/** What a test framework's recorder is told. Every method is optional. */
export interface RunObserver {
  /** A capture started (runNative, describeNative). */
  captureStarted?(start: CaptureStart): void
  /** The capture started under this id ended, with a run or an error. */
  captureEnded?(capture: string): void
  /** A run was made; `id` is unique to it across processes and machines. */
  runMade?(id: string, run: RunJson): void
  /**
   * A matcher checked a run: all of it (`leaks` null) or the loss records at these indices of
   * `reportRecords(run)` (a test case's slice, or the kinds a leak matcher judged). `context` is the
   * matcher's `this` (Vitest's or Jest's state); `verdict`, what it made of them.
   */
  runChecked?(id: string, run: RunJson, leaks: number[] | null, context: unknown, verdict: CheckVerdict): void
}

interface Registry {
  observers: Set<RunObserver>
  ids: WeakMap<object, string>
  /** A run's loss records and test-case leak summaries, to the run: how a slice finds its run. */
  owners: WeakMap<object, RunJson>
  /**
   * Runs registered whose parts are not in `owners` yet: they are filed there when a slice is
   * first looked up (a CLI run of 100,000 records never is, and filing them cost it 0.05 s).
   */
  unfiled?: WeakRef<RunJson>[]
}

const REGISTRY = Symbol.for('heapspec.run-events')

function registry(): Registry {
  const holder = globalThis as typeof globalThis & { [REGISTRY]?: Registry }
  holder[REGISTRY] ??= { observers: new Set(), ids: new WeakMap(), owners: new WeakMap() }
  return holder[REGISTRY]
}

function notify(call: (observer: RunObserver) => void): void {
  for (const observer of registry().observers) call(observer)
}

/** Adds an observer; returns the function that removes it. */
export function observeRuns(observer: RunObserver): () => void {
  registry().observers.add(observer)
  return () => {
    registry().observers.delete(observer)
  }
}

/** The run's id, registering the run (and what its slices are made of) on first sight. */
function register(run: RunJson): { id: string; isNew: boolean } {
  const holder = registry()
  const { ids } = holder
  const known = ids.get(run)
  if (known) return { id: known, isNew: false }
  const id = randomUUID()
  ids.set(run, id)
  holder.unfiled ??= []
  holder.unfiled.push(new WeakRef(run))
  return { id, isNew: true }
}

/** The run a loss record or a test case's leak summary belongs to, among the runs registered. */
function ownerOf(part: object): RunJson | undefined {
  const holder = registry()
  const { owners } = holder
  for (const ref of holder.unfiled?.splice(0) ?? []) {
    const run = ref.deref()
    if (!run) continue
    for (const record of reportRecords(run)) owners.set(record, run)
    // the exit's records reportRecords left out: those a test case's own records stand for
    const own = new Set(run.tests.filter((t) => t.leaks !== undefined).map((t) => t.name))
    for (const record of run.leaks) if (record.test !== null && own.has(record.test)) owners.set(record, run)
    for (const test of run.tests) owners.set(test.leakSummary, run)
  }
  return owners.get(part)
}

/** Announces a capture; call the returned function when it ends, however it ends. */
export function announceCaptureStart(command: unknown, backend?: unknown): () => void {
  const start: CaptureStart = {
    capture: randomUUID(),
    command: Array.isArray(command) ? command.map(String) : [String(command)],
    backend: typeof backend === 'string' ? backend : null,
    startedAt: Date.now(),
  }
  notify((o) => o.captureStarted?.(start))
  return () => notify((o) => o.captureEnded?.(start.capture))
}

/** Announces a run just made. Announcing the same run again does nothing. */
export function announceRun(run: RunJson): void {
  const { id, isNew } = register(run)
  if (isNew) notify((o) => o.runMade?.(id, run))
}

type Loose = Record<string, unknown>

function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null
}

function isRunJson(value: unknown): value is RunJson {
  return isObject(value) && value.schema === 1 && Array.isArray(value.leaks) && Array.isArray(value.tests)
}

/**
 * Announces what a matcher checked: a run (HeapRun or run JSON) or a test case's slice of one,
 * and, for a leak matcher, its judgement (without one, the check judged no leaks: `seen`). A leak
 * matcher answers for the records of the kinds it judged only. A slice is traced to its run
 * through the records it shares with it; a slice of a run this registry never saw is not announced.
 */
export function announceCheck(received: unknown, context: unknown, judgement?: LeakJudgement): void {
  if (!isObject(received)) return
  const verdict: CheckVerdict = judgement === undefined ? 'seen' : judgement.passed ? 'passed' : 'failed'
  const judged = (run: RunJson, indices: number[] | null): number[] | null => {
    if (!judgement) return indices
    const records = reportRecords(run)
    return (indices ?? records.map((_, i) => i)).filter((i) => judgement.kinds.includes(records[i]!.kind))
  }
  const whole = isRunJson(received) ? received : isRunJson(received.json) ? received.json : undefined
  if (whole) {
    const { id } = register(whole)
    notify((o) => o.runChecked?.(id, whole, judged(whole, null), context, verdict))
    return
  }
  const leaks = Array.isArray(received.leaks) ? (received.leaks as object[]) : []
  const run = (isObject(received.leakSummary) ? ownerOf(received.leakSummary) : undefined) ?? leaks.map((r) => (isObject(r) ? ownerOf(r) : undefined)).find(Boolean)
  if (!run) return
  const { id } = register(run)
  const records = reportRecords(run)
  const indices = leaks.map((r) => records.indexOf(r as RunJson['leaks'][number])).filter((i) => i >= 0)
  notify((o) => o.runChecked?.(id, run, judged(run, indices), context, verdict))
}

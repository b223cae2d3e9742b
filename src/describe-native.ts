import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BadOptionError, CannotStartError, CaptureFailedError, HeapspecError, describeValue } from './errors.js'
import { emptyLeakSummary, type LeakRecord } from './model/types.js'
import { normalizeOptions, type RunOptions } from './options.js'
import { packageRoot } from './package-root.js'
import { HeapRun, type TestCaseRun } from './run.js'
import { runNative } from './run.js'
import { announceCaptureStart, announceRun } from './run-events.js'

/** The test framework functions describeNative registers with: Vitest's or Jest's, which have the same shape. */
export interface TestFrameworkApi {
  describe(name: string, fn: () => void): void
  it(name: string, fn: () => void | Promise<void>, timeout?: number): void
  beforeAll(fn: () => void | Promise<void>, timeout?: number): void
  // The framework's own expect, with heapspec's matchers registered (heapspec/vitest, heapspec/jest).
  expect(value: unknown): unknown
}

/** Options of `describeNative`: the run's options, plus how the test cases are found. */
export interface DescribeNativeOptions extends RunOptions {
  /**
   * The native test cases, when known. With them, the program runs in a `beforeAll` hook
   * (asynchronously, any run option allowed); without them it runs once while the test file is
   * collected, so that the framework can list each test case it finds.
   * @default found by running the program at collection time
   * @example { cases: ['parse_empty', 'parse_big'] }
   */
  cases?: string[]
  /**
   * The name of the `describe` block.
   * @default the program's file name
   */
  name?: string
}

/** The test case of a run's leaks made outside any test case (in main, static constructors, ...). */
const OUTSIDE = '(outside any test case)'

/** The global describe/it/beforeAll/expect of whichever framework runs the file (Jest; Vitest with `globals: true`). */
function globalApi(): TestFrameworkApi {
  const g = globalThis as unknown as Partial<TestFrameworkApi>
  if (typeof g.describe !== 'function' || typeof g.it !== 'function' || typeof g.beforeAll !== 'function' || typeof g.expect !== 'function') {
    throw new HeapspecError(
      "heapspec: describeNative needs the test framework's describe, it, beforeAll and expect, and found no globals. " +
        "With Vitest, import { describeNative } from 'heapspec/vitest' (or set test.globals: true); with Jest, use it in a test file.",
    )
  }
  return g as TestFrameworkApi
}

/** Asserts no leaks and no memory errors through the framework's expect, so the failure reads like any heapspec matcher's. */
function expectNoLeaks(api: TestFrameworkApi, subject: TestCaseRun): void {
  const assertion = api.expect(subject) as { toHaveNoLeaks?: () => void; toHaveNoMemoryErrors?: () => void }
  let registered = false
  try {
    registered = typeof assertion.toHaveNoLeaks === 'function' && typeof assertion.toHaveNoMemoryErrors === 'function'
  } catch {
    // Vitest's expect throws on a property it does not know.
  }
  if (!registered) {
    throw new HeapspecError(
      "heapspec: describeNative needs heapspec's matchers: add 'heapspec/vitest' to Vitest's setupFiles, or 'heapspec/jest' to Jest's setupFilesAfterEnv.",
    )
  }
  assertion.toHaveNoMemoryErrors!()
  assertion.toHaveNoLeaks!()
}

/** The leaks made outside every test case, as a slice of their own. */
function outsideTests(run: HeapRun): TestCaseRun {
  const leaks: LeakRecord[] = run.leaks.filter((l) => l.test === null)
  const leakSummary = emptyLeakSummary()
  for (const l of leaks) {
    leakSummary[l.kind].bytes += l.bytes
    leakSummary[l.kind].blocks += l.blocks
  }
  const errors = run.errors.filter((e) => e.test === null)
  return { name: OUTSIDE, totals: run.json.totals, leakSummary, leaks, suppressed: { bytes: 0, blocks: 0 }, errors }
}

/** The program's ending as a failure, when it did not exit 0. */
function checkEnding(run: HeapRun): void {
  const p = run.json.program
  if (p.exitCode === 0 && !p.signal && !p.timedOut) return
  const how = p.timedOut ? 'was stopped by the timeout' : p.signal ? `was killed by ${p.signal}` : `exited with code ${p.exitCode}`
  const tail = run.stderr.trim().split('\n').slice(-10).join('\n')
  throw new Error(`${p.command.join(' ')} ${how}.${tail ? `\nIts last stderr lines:\n${tail}` : ''}`)
}

/**
 * The frames of the code that called describeNative, without heapspec's own: a failing test it
 * registered then points at the user's test file (frameworks show the code frame of the first
 * frame outside node_modules), not at heapspec's bundle, where every such failure would look alike.
 */
function callerFrames(): string[] {
  const root = packageRoot()
  const own = ['dist', 'src', 'matchers'].map((d) => join(root, d) + sep)
  const lines = (new Error().stack ?? '').split('\n').filter((l) => /^\s+at /.test(l))
  const isOwn = (line: string): boolean => own.some((prefix) => line.includes(prefix) || line.includes(pathToFileURL(prefix).href))
  return lines.filter((l) => !isOwn(l))
}

/** `fn`, whose failures carry `frames` (the describeNative call) as their stack. */
function failingAt(frames: string[], fn: () => void | Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn()
    } catch (error) {
      if (frames.length > 0 && error instanceof Error) error.stack = `${error.name}: ${error.message}\n${frames.join('\n')}`
      throw error
    }
  }
}

interface ChildRequest {
  module: string
  command: string[]
  options: Record<string, unknown>
  out: string
}

// Runs in a child `node`: the capture is asynchronous, and collection needs its result synchronously.
const CHILD_SCRIPT = `
import { readFileSync, writeFileSync } from 'node:fs'
const request = JSON.parse(readFileSync(0, 'utf8'))
const { runNative } = await import(request.module)
const options = { ...request.options }
if (options.tests && typeof options.tests === 'object') options.tests = new RegExp(options.tests.source, options.tests.flags)
let result
try {
  const run = await runNative(request.command, options)
  result = { ok: true, json: run.toJSON(), stdout: run.stdout, stderr: run.stderr }
} catch (error) {
  result = { ok: false, name: error?.name, message: error?.message ?? String(error) }
}
writeFileSync(request.out, JSON.stringify(result))
`

const ERRORS: Record<string, new (message: string) => HeapspecError> = { BadOptionError, CannotStartError, CaptureFailedError }

/** Runs the capture to completion from synchronous code, through a child `node` running heapspec's ESM build. */
function runNativeSync(command: string[], options: RunOptions): HeapRun {
  if (options.signal !== undefined) throw new BadOptionError('The `signal` option of describeNative needs the `cases` option: without it the program runs at collection time, before any signal could abort it.')
  const module = join(packageRoot(), 'dist', 'src', 'index.js')
  if (!existsSync(module)) throw new CannotStartError(`heapspec: cannot find its build (${module}). Run npm run build in the heapspec package.`)
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-describe-'))
  try {
    const { tests } = options
    const request: ChildRequest = {
      module: pathToFileURL(module).href,
      command,
      options: { ...options, ...(tests instanceof RegExp ? { tests: { source: tests.source, flags: tests.flags } } : {}) },
      out: join(dir, 'result.json'),
    }
    const ended = announceCaptureStart(command, options.backend)
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD_SCRIPT], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    ended()
    if (!existsSync(request.out)) {
      throw new CaptureFailedError(`heapspec: describeNative could not run ${command.join(' ')}: its node child ${child.error ? `failed (${child.error.message})` : `exited ${child.status ?? child.signal}`}.${child.stderr ? `\n${child.stderr.trim()}` : ''}`)
    }
    const result = JSON.parse(readFileSync(request.out, 'utf8')) as { ok: true; json: HeapRun['json']; stdout: string; stderr: string } | { ok: false; name?: string; message: string }
    if (!result.ok) throw new (ERRORS[result.name ?? ''] ?? HeapspecError)(result.message)
    announceRun(result.json)
    return new HeapRun(result.json, result.stdout, result.stderr)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Runs a native test program once and registers one framework test per native test case, each
 * asserting that the test case leaked nothing, plus one for the program's exit and the leaks made
 * outside every test case. Test cases come from heapspec.h's markers or the `tests` option.
 *
 * Without `cases`, the program runs while the file is collected (the framework needs the test
 * names before it runs anything); with `cases`, it runs in a `beforeAll` hook.
 * @example describeNative(['./build/tests'])
 * @example describeNative(['./build/tests'], { cases: ['parse_empty', 'parse_big'], backend: 'valgrind' })
 */
export function describeNative(command: string[], options: DescribeNativeOptions = {}, api: TestFrameworkApi = globalApi()): void {
  if (typeof options !== 'object' || options === null) throw new BadOptionError(`Expected the options of describeNative to be an object, got ${describeValue(options)}.`)
  const { cases, name, ...runOptions } = options
  if (cases !== undefined && !(Array.isArray(cases) && cases.every((c) => typeof c === 'string' && c !== ''))) {
    throw new BadOptionError(`Expected the \`cases\` option to be an array of test case names, got ${describeValue(cases)}.`)
  }
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw new BadOptionError(`Expected the \`name\` option to be a non-empty string, got ${describeValue(name)}.`)
  // Bad options are the caller's mistake: throw now, before anything runs or registers.
  normalizeOptions(command, runOptions)
  const title = name ?? basename(command[0]!)
  const caller = callerFrames()
  const it = (testName: string, fn: () => void | Promise<void>): void => api.it(testName, failingAt(caller, fn))
  // Long enough for a capture under a debugger; the run's own `timeout` bounds the program.
  const hookTimeout = ((runOptions.timeout ?? 600) + 60) * 1000

  if (cases === undefined) {
    let run: HeapRun | undefined
    let failure: unknown
    try {
      run = runNativeSync(command, runOptions)
    } catch (error) {
      if (error instanceof BadOptionError) throw error
      failure = error
    }
    api.describe(title, () => {
      if (!run) {
        it(`runs ${command.join(' ')}`, () => {
          throw failure
        })
        return
      }
      const found = run
      for (const t of found.tests) it(t.name, () => expectNoLeaks(api, found.test(t.name)))
      it(`${OUTSIDE}: exits cleanly and leaks nothing`, () => {
        checkEnding(found)
        if (found.tests.length === 0) {
          throw new HeapspecError(`heapspec: ${command.join(' ')} ran no test case. Bracket each with heapspec_test_begin/heapspec_test_end (heapspec.h), or give the \`tests\` option.`)
        }
        expectNoLeaks(api, outsideTests(found))
      })
    })
    return
  }

  api.describe(title, () => {
    let run: HeapRun | undefined
    api.beforeAll(async () => {
      run = await runNative(command, runOptions)
    }, hookTimeout)
    const started = (): HeapRun => {
      if (!run) throw new HeapspecError(`heapspec: ${command.join(' ')} did not run (see the beforeAll failure above).`)
      return run
    }
    for (const testCase of cases) it(testCase, () => expectNoLeaks(api, started().test(testCase)))
    it(`${OUTSIDE}: exits cleanly and leaks nothing`, () => {
      const done = started()
      checkEnding(done)
      const unlisted = done.tests.map((t) => t.name).filter((t) => !cases.includes(t))
      if (unlisted.length > 0) {
        throw new HeapspecError(`heapspec: ${command.join(' ')} ran test cases missing from \`cases\`: ${unlisted.map((t) => `"${t}"`).join(', ')}. Add them, or drop \`cases\` to find them by running the program.`)
      }
      expectNoLeaks(api, outsideTests(done))
    })
  })
}

import { resolve } from 'node:path'
import { BadOptionError, describeValue } from './errors.js'
import type { CaptureSpec } from './capture/backend.js'
import { validateValgrindArgs } from './capture/valgrind/backend.js'
import { checkSuppressionFile, loadSuppressions } from './capture/suppression-files.js'

/** The backends a run can ask for; `auto` picks the fastest one that can run the program. */
export const BACKENDS = ['auto', 'preload', 'gdb', 'valgrind'] as const

/** A backend a run can ask for. */
export type BackendName = (typeof BACKENDS)[number]

/** A capture backend's own name (what `auto` resolves to, and what a run's JSON names). */
export type CaptureBackendName = Exclude<BackendName, 'auto'>

/** Options of `runNative` (and, through the CLI's flags, of `heapspec run`). */
export interface RunOptions {
  /**
   * The capture backend: `preload` (an allocation interposer, near native speed), `gdb`, `valgrind`,
   * or `auto`, the fastest of them that can run the program (`preload`, unless the `tests` or
   * `objects` option asks for what only `gdb` does, or the program cannot take LD_PRELOAD).
   * @default 'auto'
   * @example { backend: 'valgrind' }
   */
  backend?: BackendName
  /**
   * Without the marker header: every function whose name matches is a test case, entry to return.
   * @example { tests: /^test_/ }
   */
  tests?: RegExp | string
  /**
   * Observe only the allocations that these shared objects make: a path (matched at the end of
   * the loaded object's path) or a RegExp. `runNode` defaults it to every `.node` file.
   * @default [] (every allocation)
   * @example { objects: ['build/Release/addon.node'] }
   */
  objects?: (string | RegExp)[]
  /**
   * Stop the program (and every process it started) after this many seconds, and report what it
   * leaked until then. Any positive number; one past a timer's range (2^31-1 ms, about 24.8 days)
   * means no limit.
   * @default no limit
   * @example { timeout: 60 }
   */
  timeout?: number
  /** Working directory of the program. @default process.cwd() */
  cwd?: string
  /** Environment of the program. @default process.env */
  env?: Record<string, string | undefined>
  /**
   * The program's stdin, stdout and stderr: `'pipe'` captures its output into `run.stdout` and
   * `run.stderr` and gives it /dev/null as stdin (a test never waits on the runner's terminal);
   * `'inherit'` gives it the caller's own three, as the CLI does.
   * @default 'pipe'
   * @example { stdio: 'inherit' }
   */
  stdio?: 'pipe' | 'inherit'
  /** Write every allocation event with its stack to this file (GDB backend). */
  memdump?: string
  /**
   * memcheck suppression files, applied on every backend with memcheck's rules, after heapspec's
   * defaults (glibc's and libstdc++'s own bookkeeping).
   * @default []
   * @example { suppressions: ['./known-leaks.supp'] }
   */
  suppressions?: string[]
  /**
   * Give every loss record a ready-to-paste memcheck suppression (`LeakRecord.suppression`; the CLI
   * prints them), on every backend.
   * @default false
   * @example { genSuppressions: true }
   */
  genSuppressions?: boolean
  /**
   * Extra memcheck options (Valgrind backend); heapspec's own are kept.
   * @default []
   * @example { valgrindArgs: ['--track-origins=yes'] }
   */
  valgrindArgs?: string[]
  /** Aborting stops the capture and every process it started. */
  signal?: AbortSignal
  /**
   * Aborting stops the program and every process it started as the timeout does: the run
   * reports what was captured until then (the CLI's Ctrl-C and SIGTERM).
   */
  stop?: AbortSignal
}

/** Options validated and defaulted: the backend to use and what it needs. */
export interface NormalizedOptions {
  backend: BackendName
  spec: Omit<CaptureSpec, 'command'>
}

function fail(name: string, expected: string, value: unknown): never {
  throw new BadOptionError(`Expected the \`${name}\` option to be ${expected}, got ${describeValue(value)}.`)
}

function backendOption(value: unknown): BackendName {
  if (value === undefined) return 'auto'
  if (typeof value === 'string' && (BACKENDS as readonly string[]).includes(value)) return value as BackendName
  return fail('backend', `one of ${BACKENDS.map((b) => `"${b}"`).join(', ')}`, value)
}

function testsOption(value: unknown): RegExp | undefined {
  if (value === undefined) return undefined
  if (value instanceof RegExp) return value
  if (typeof value === 'string' && value !== '') {
    try {
      return new RegExp(value)
    } catch {
      return fail('tests', 'a valid regular expression', value)
    }
  }
  return fail('tests', 'a RegExp or a non-empty string', value)
}

/** The longest delay a Node timer takes (2^31-1 ms, about 24.8 days); a longer timeout means no limit. */
const LONGEST_TIMER_MS = 2 ** 31 - 1

function timeoutOption(value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) {
    const ms = value * 1000
    return ms > LONGEST_TIMER_MS ? undefined : Math.max(1, Math.round(ms))
  }
  return fail('timeout', 'a positive number of seconds', value)
}

function objectsOption(value: unknown): RegExp[] {
  if (value === undefined) return []
  if (Array.isArray(value) && value.every((v) => (typeof v === 'string' && v !== '') || v instanceof RegExp)) {
    return (value as (string | RegExp)[]).map((v) => (typeof v === 'string' ? new RegExp(`${v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : v))
  }
  return fail('objects', 'an array of paths or RegExps', value)
}

function stringList(name: string, value: unknown): string[] {
  if (value === undefined) return []
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[]
  return fail(name, 'an array of strings', value)
}

function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string' && value !== '') return value
  return fail(name, 'a non-empty string', value)
}

function valgrindArgsOption(value: unknown): string[] {
  if (value === undefined) return []
  validateValgrindArgs(value)
  return value
}

const KNOWN = new Set(['backend', 'tests', 'objects', 'timeout', 'cwd', 'env', 'stdio', 'memdump', 'suppressions', 'genSuppressions', 'valgrindArgs', 'signal', 'stop'])

/** One place for defaults and validation, for the API and the CLI alike: nothing runs on a bad option. */
export function normalizeOptions(command: unknown, options: unknown = {}): NormalizedOptions & { command: string[] } {
  if (!Array.isArray(command) || command.length === 0 || !command.every((w) => typeof w === 'string') || command[0] === '') {
    throw new BadOptionError(`Expected the command to be a non-empty array of strings (program first), got ${describeValue(command)}.`)
  }
  if (typeof options !== 'object' || options === null) throw new BadOptionError(`Expected options to be an object, got ${describeValue(options)}.`)
  const o = options as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new BadOptionError(`Unknown option \`${key}\`. Known options: ${[...KNOWN].join(', ')}.`)
  }
  const cwd = resolve(optionalString('cwd', o.cwd) ?? process.cwd())
  const env = o.env === undefined ? process.env : typeof o.env === 'object' && o.env !== null ? (o.env as Record<string, string | undefined>) : fail('env', 'an object', o.env)
  const stdio = o.stdio === undefined ? 'pipe' : o.stdio === 'pipe' || o.stdio === 'inherit' ? o.stdio : fail('stdio', '"pipe" or "inherit"', o.stdio)
  const signal = o.signal === undefined || o.signal instanceof AbortSignal ? (o.signal as AbortSignal | undefined) : fail('signal', 'an AbortSignal', o.signal)
  const stop = o.stop === undefined || o.stop instanceof AbortSignal ? (o.stop as AbortSignal | undefined) : fail('stop', 'an AbortSignal', o.stop)
  const memdump = optionalString('memdump', o.memdump)
  const backend = backendOption(o.backend)
  const tests = testsOption(o.tests)
  const objects = objectsOption(o.objects)
  const suppressions = stringList('suppressions', o.suppressions).map((f) => checkSuppressionFile(f, cwd))
  const genSuppressions = o.genSuppressions === undefined ? false : typeof o.genSuppressions === 'boolean' ? o.genSuppressions : fail('genSuppressions', 'a boolean', o.genSuppressions)
  return {
    command: command as string[],
    backend,
    spec: {
      displayCommand: command as string[],
      cwd,
      env,
      timeoutMs: timeoutOption(o.timeout),
      tests,
      objects,
      stdio,
      memdumpFile: memdump === undefined ? undefined : resolve(cwd, memdump),
      suppressions,
      suppressionRules: loadSuppressions(suppressions),
      genSuppressions,
      valgrindArgs: valgrindArgsOption(o.valgrindArgs),
      signal,
      stop,
      debug: Boolean(process.env.HEAPSPEC_DEBUG),
    },
  }
}

import { BadOptionError, describeValue } from '../src/errors.js'
import { LEAK_KINDS, type LeakKind } from '../src/model/types.js'
import { FAILING_KINDS } from '../src/report/text.js'
import { DEFAULT_WATERMARKS } from '../src/report/write-report.js'

/** Options of heapspec's Vitest and Jest reporters. */
export interface HeapspecReporterOptions {
  /**
   * Where the HTML and JSON leak report and the saved runs (for `heapspec report`) are written,
   * relative to the project root.
   * @default 'heapspec-report'
   * @example { outputDir: 'reports/heap' }
   */
  outputDir?: string
  /**
   * The leak kinds that count: they are summarized, annotated and rank the report.
   * @default ['definite', 'indirect', 'possible']
   * @example { kinds: ['definite'] }
   */
  kinds?: LeakKind[]
  /**
   * Leaked bytes (of the counted kinds) below the first watermark show as fine in the HTML
   * report, from the second on as bad, in between as notable.
   * @default [1, 1024]
   * @example { watermarks: [1, 64 * 1024] }
   */
  watermarks?: [number, number]
  /**
   * An `::error` annotation per leak at its source line, for GitHub Actions.
   * @default process.env.GITHUB_ACTIONS === 'true'
   */
  annotations?: boolean
  /**
   * A line when a capture runs longer than 2 seconds, and every 10 seconds after, naming the
   * program and the test.
   * @default on a terminal, outside CI
   */
  progress?: boolean
}

/** The options with their defaults in place. */
export interface NormalizedReporterOptions {
  outputDir: string
  kinds: LeakKind[]
  watermarks: [number, number]
  annotations: boolean
  progress: boolean
}

const KNOWN = ['outputDir', 'kinds', 'watermarks', 'annotations', 'progress'] as const

function outputDir(value: unknown): string {
  if (value === undefined) return 'heapspec-report'
  if (typeof value === 'string' && value.trim() !== '') return value
  throw new BadOptionError(`Expected the \`outputDir\` option of heapspec's reporter to be a directory path, got ${describeValue(value)}.`)
}

function kinds(value: unknown): LeakKind[] {
  if (value === undefined) return [...FAILING_KINDS]
  if (Array.isArray(value) && value.length > 0 && value.every((k) => (LEAK_KINDS as readonly unknown[]).includes(k))) return [...new Set(value as LeakKind[])]
  throw new BadOptionError(`Expected the \`kinds\` option of heapspec's reporter to be a non-empty array of ${LEAK_KINDS.map((k) => `"${k}"`).join(', ')}, got ${describeValue(value)}.`)
}

function watermarks(value: unknown): [number, number] {
  if (value === undefined) return [...DEFAULT_WATERMARKS]
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) && value[0] <= value[1]) return [value[0], value[1]]
  throw new BadOptionError(`Expected the \`watermarks\` option of heapspec's reporter to be two byte counts [low, high] with low <= high, got ${describeValue(value)}.`)
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value === 'boolean') return value
  throw new BadOptionError(`Expected the \`${name}\` option of heapspec's reporter to be true or false, got ${describeValue(value)}.`)
}

/**
 * Validates a reporter's options and fills in the defaults; throws on a bad one before anything runs.
 * @example normalizeReporterOptions({ outputDir: 'reports/heap' })
 */
export function normalizeReporterOptions(options: unknown, env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stdout.isTTY)): NormalizedReporterOptions {
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object' || Array.isArray(options)) throw new BadOptionError(`Expected the options of heapspec's reporter to be an object, got ${describeValue(options)}.`)
  const given = options as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (!(KNOWN as readonly string[]).includes(key)) throw new BadOptionError(`Unknown option \`${key}\` of heapspec's reporter. Known options: ${KNOWN.join(', ')}.`)
  }
  return {
    outputDir: outputDir(given.outputDir),
    kinds: kinds(given.kinds),
    watermarks: watermarks(given.watermarks),
    annotations: flag('annotations', given.annotations, env.GITHUB_ACTIONS === 'true'),
    progress: flag('progress', given.progress, isTTY && !env.CI),
  }
}

#!/usr/bin/env node
import { writeFileSync } from 'node:fs'
import { isatty } from 'node:tty'
import { join } from 'node:path'
import { BadOptionError, CaptureFailedError, HeapspecError } from './errors.js'
import { packageRoot } from './package-root.js'
import { githubAnnotations } from './report/annotations.js'
import { jsonText } from './report/json-text.js'
import { printable } from './report/printable.js'
import { normalizeRun, readSavedRuns } from './report/saved-runs.js'
import { useColor } from './report/terminal.js'
import { formatSummaryReport } from './report/test-summary.js'
import { FAILING_KINDS, formatReport, runFails } from './report/text.js'
import { runNative } from './run.js'
import { BACKENDS, type RunOptions } from './options.js'
import { checkOutputFile, prepareOutputDir } from './output-paths.js'
import type { RunJson } from './model/types.js'

/** The HTML and JSON report writer, loaded when a report is written: it brings istanbul-lib-report,
 * which a plain `run` (most runs) would otherwise load at every start. */
const reportWriter = (): Promise<typeof import('./report/write-report.js')> => import('./report/write-report.js')

const USAGE = `Usage:
  heapspec run [--backend ${BACKENDS.join('|')}] [--tests REGEX] [--timeout SECONDS] [--json FILE] [--out DIR]
               [--log-file FILE] [--suppressions FILE]... [--gen-suppressions] [--valgrind-arg ARG]... [--] PROGRAM [ARGS...]
                              run PROGRAM with its own stdin, stdout and stderr; the leak report goes to
                              stderr, or to --log-file FILE. Options go before PROGRAM; --opt=VALUE works
  heapspec include            print the directory holding heapspec.h (use -I"$(npx heapspec include)")
  heapspec report [--out DIR] PATH...
                              merge saved runs (shards, machines) into one report: the per-test summary,
                              and the HTML and JSON report in --out (default heapspec-report). Each PATH is
                              a heapspec-runs.json or heapspec.json, or a directory searched for them`

/** The end of a usage error's one line: what to run for the whole usage. */
const SEE_USAGE = 'Run `heapspec --help` for the usage.'

interface RunArgs {
  options: RunOptions
  json?: string
  out?: string
  logFile?: string
  command: string[]
}

function parseRunArgs(argv: string[]): RunArgs {
  const options: RunOptions = { stdio: 'inherit' }
  const parsed: RunArgs = { options, command: [] }
  const suppressions: string[] = []
  const valgrindArgs: string[] = []
  let i = 0
  const value = (flag: string): string => {
    const v = argv[++i]
    // `--tests -- prog`: the `--` ends heapspec's options, it is no pattern (write --tests=-- for one)
    if (v === undefined || v === '--') throw new BadOptionError(`heapspec: ${flag} needs a value. ${SEE_USAGE}`)
    return v
  }
  for (; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    const take = (): string => inline ?? value(flag)
    if (flag === '--') {
      i++
      break
    } else if (flag === '--backend') options.backend = take() as RunOptions['backend']
    else if (flag === '--tests') options.tests = take()
    else if (flag === '--timeout') {
      const text = take()
      const seconds = Number(text)
      // any number JavaScript reads (1e-3, .5, 1e9); the option's validator judges its value
      options.timeout = text.trim() !== '' && !Number.isNaN(seconds) ? seconds : (text as unknown as number)
    } else if (flag === '--json') parsed.json = take()
    else if (flag === '--out') parsed.out = take()
    else if (flag === '--log-file') parsed.logFile = take()
    else if (flag === '--suppressions') suppressions.push(take())
    else if (flag === '--gen-suppressions' && inline === undefined) options.genSuppressions = true
    else if (flag === '--valgrind-arg') valgrindArgs.push(take())
    else if (flag.startsWith('-')) throw new BadOptionError(`heapspec: unknown option ${arg}. ${SEE_USAGE}`)
    else break
  }
  parsed.command = argv.slice(i)
  if (parsed.command.length === 0) throw new BadOptionError(`heapspec: run needs a PROGRAM. ${SEE_USAGE}`)
  if (suppressions.length > 0) options.suppressions = suppressions
  if (valgrindArgs.length > 0) options.valgrindArgs = valgrindArgs
  // Checked and made before the program runs: a path that cannot be written is refused now, not after the capture.
  if (parsed.json) parsed.json = checkOutputFile('--json', parsed.json)
  if (parsed.logFile) parsed.logFile = checkOutputFile('--log-file', parsed.logFile)
  if (parsed.out) parsed.out = prepareOutputDir('--out', parsed.out)
  return parsed
}

/** A closed stdout or stderr (`heapspec run ... | head -1`) ends nothing: what would go there is dropped. */
function ignoreClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error
    })
  }
}

/** A line on the terminal saying what runs and for how long: captures under a debugger take a while. */
function progress(label: string): () => void {
  // isatty, not process.stderr.isTTY: see run() on why heapspec's streams stay untouched meanwhile
  if (!isatty(2) || process.env.CI) return () => {}
  const started = Date.now()
  const draw = (): void => {
    process.stderr.write(`\r\x1b[2Kheapspec: ${label} (${Math.round((Date.now() - started) / 1000)} s)`)
  }
  const timer = setInterval(draw, 1000)
  return () => {
    clearInterval(timer)
    process.stderr.write('\r\x1b[2K')
  }
}

async function run(argv: string[]): Promise<number> {
  const args = parseRunArgs(argv)
  // The first Ctrl-C or SIGTERM stops the program as --timeout does, and the report says what was
  // captured until then; a second one stops everything at once.
  const controller = new AbortController()
  const stopping = new AbortController()
  let interruptedBy: NodeJS.Signals | undefined
  const onInterrupt = (signal: NodeJS.Signals): void => {
    if (interruptedBy === undefined) {
      interruptedBy = signal
      stopping.abort()
    } else controller.abort()
  }
  process.on('SIGINT', onInterrupt)
  process.on('SIGTERM', onInterrupt)
  const done = progress(`running ${args.command.join(' ')} under ${args.options.backend ?? 'auto'}`)
  let json: RunJson
  try {
    const result = await runNative(args.command, {
      ...args.options,
      signal: controller.signal,
      stop: stopping.signal,
      ...(args.out ? { memdump: join(args.out, 'memdump.txt') } : {}),
    })
    json = result.toJSON()
  } catch (error) {
    if (controller.signal.aborted) {
      done()
      process.stderr.write('heapspec: interrupted; the program and its debugger were stopped.\n')
      return 130
    }
    throw error
  } finally {
    done()
    process.off('SIGINT', onInterrupt)
    process.off('SIGTERM', onInterrupt)
  }
  // Only now, the program done, does heapspec touch process.stdout and process.stderr: Node makes
  // a pipe behind either non-blocking when it opens the stream, and the program shares that pipe
  // (its write() would fail with EAGAIN when the reader is slow). On a terminal the progress line
  // above writes earlier; Node opens its own descriptor for a terminal.
  ignoreClosedPipes()
  // The report never mixes into the program's stdout: stderr, as memcheck does, or --log-file.
  const suppressions = args.options.genSuppressions ?? false
  const color = !args.logFile && useColor(process.stderr)
  const report = formatReport(json, { color, suppressions, stoppedBy: interruptedBy })
  if (args.logFile) writeFileSync(args.logFile, report)
  else process.stderr.write(report)
  // each text made once: a run of 100,000 records is a 56 MB JSON and a 13 MB report
  const runText = args.json || args.out ? jsonText(json) + '\n' : ''
  if (args.json) writeFileSync(args.json, runText)
  if (args.out) {
    writeFileSync(join(args.out, 'leak-report.txt'), color || suppressions ? formatReport(json, { stoppedBy: interruptedBy }) : report)
    writeFileSync(join(args.out, 'heapspec.json'), runText)
    const { writeLeakReport } = await reportWriter()
    writeLeakReport(args.out, [{ tests: [], run: normalizeRun(json, process.cwd()) }], { root: process.cwd(), kinds: FAILING_KINDS })
  }
  if (interruptedBy) return interruptedBy === 'SIGINT' ? 130 : 143
  return runFails(json) ? 1 : 0
}

/** `heapspec report`: merges saved runs into one report, the same as one unsharded run would have given. */
async function report(argv: string[]): Promise<number> {
  let out = 'heapspec-report'
  const paths: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--out') {
      const value = argv[++i]
      if (value === undefined) throw new BadOptionError(`heapspec: --out needs a value. ${SEE_USAGE}`)
      out = value
    } else if (arg.startsWith('--out=')) out = arg.slice('--out='.length)
    else if (arg === '--') {
      paths.push(...argv.slice(i + 1))
      break
    } else if (arg.startsWith('-')) throw new BadOptionError(`heapspec: unknown option ${arg}. ${SEE_USAGE}`)
    else paths.push(arg)
  }
  if (paths.length === 0) throw new BadOptionError(`heapspec: report needs at least one PATH. ${SEE_USAGE}`)
  const root = process.cwd()
  const runs = readSavedRuns(paths, root, [out])
  process.stdout.write(formatSummaryReport(runs, { kinds: FAILING_KINDS, color: useColor(process.stdout) }))
  const { writeLeakReport } = await reportWriter()
  const index = writeLeakReport(out, runs, { root, kinds: FAILING_KINDS, saveRuns: true, text: formatSummaryReport(runs, { kinds: FAILING_KINDS }) })
  if (process.env.GITHUB_ACTIONS === 'true') {
    for (const line of githubAnnotations(runs, { root, workspace: process.env.GITHUB_WORKSPACE, kinds: FAILING_KINDS })) process.stdout.write(line + '\n')
  }
  process.stdout.write(`\nheapspec: merged ${runs.length} run${runs.length === 1 ? '' : 's'} into ${printable(index)}\n`)
  return runs.some((r) => runFails(r.run)) ? 1 : 0
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === 'run') return run(rest)
  if (command === 'include') {
    process.stdout.write(join(packageRoot(), 'src') + '\n')
    return 0
  }
  if (command === 'report') return report(rest)
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  throw new BadOptionError(`heapspec: ${command === undefined ? 'no command given' : `unknown command ${command}`}. ${SEE_USAGE}`)
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    if (error instanceof HeapspecError) {
      process.stderr.write(error.message.split('\n').map((l, i) => (i === 0 && !l.startsWith('heapspec:') ? `heapspec: ${l}` : l)).join('\n') + '\n')
      process.exitCode = error instanceof CaptureFailedError ? 1 : 2
    } else {
      process.stderr.write(`heapspec: internal error: ${(error as Error)?.stack ?? String(error)}\n`)
      process.exitCode = 2
    }
  },
)

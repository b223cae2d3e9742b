#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BadOptionError, CaptureFailedError, HeapspecError } from './errors.js'
import { packageRoot } from './package-root.js'
import { formatReport, runFails } from './report/text.js'
import { runNative } from './run.js'
import { BACKENDS, type RunOptions } from './options.js'
import type { RunJson } from './model/types.js'

const USAGE = `Usage:
  heapspec run [--backend ${BACKENDS.join('|')}] [--tests REGEX] [--timeout SECONDS] [--json FILE] [--out DIR]
               [--suppressions FILE]... [--valgrind-arg ARG]... [--] PROGRAM [ARGS...]
  heapspec include            print the directory holding heapspec.h (use -I"$(npx heapspec include)")
  heapspec report DIR...      print the reports of saved runs (each DIR holds a heapspec.json)`

/** Colour on a terminal, none in a pipe or a CI log; NO_COLOR and FORCE_COLOR win. */
function useColor(stream: NodeJS.WriteStream): boolean {
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true
  if (process.env.NO_COLOR || process.env.CI || process.env.TERM === 'dumb') return false
  return Boolean(stream.isTTY)
}

interface RunArgs {
  options: RunOptions
  json?: string
  out?: string
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
    if (v === undefined) throw new BadOptionError(`heapspec: ${flag} needs a value.\n${USAGE}`)
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
      options.timeout = /^\d+(\.\d+)?$/.test(text) ? Number(text) : (text as unknown as number)
    } else if (flag === '--json') parsed.json = take()
    else if (flag === '--out') parsed.out = take()
    else if (flag === '--suppressions') suppressions.push(take())
    else if (flag === '--valgrind-arg') valgrindArgs.push(take())
    else if (flag.startsWith('-')) throw new BadOptionError(`heapspec: unknown option ${arg}.\n${USAGE}`)
    else break
  }
  parsed.command = argv.slice(i)
  if (parsed.command.length === 0) throw new BadOptionError(`heapspec: run needs a PROGRAM.\n${USAGE}`)
  if (suppressions.length > 0) options.suppressions = suppressions
  if (valgrindArgs.length > 0) options.valgrindArgs = valgrindArgs
  return parsed
}

/** A line on the terminal saying what runs and for how long: captures under a debugger take a while. */
function progress(label: string): () => void {
  if (!process.stderr.isTTY || process.env.CI) return () => {}
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
  const controller = new AbortController()
  const onInterrupt = (): void => controller.abort()
  process.on('SIGINT', onInterrupt)
  process.on('SIGTERM', onInterrupt)
  const done = progress(`running ${args.command.join(' ')} under ${args.options.backend ?? 'gdb'}`)
  let json: RunJson
  try {
    const result = await runNative(args.command, {
      ...args.options,
      signal: controller.signal,
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
  process.stdout.write(formatReport(json, { color: useColor(process.stdout) }))
  if (args.json) writeFileSync(args.json, JSON.stringify(json, null, 2) + '\n')
  if (args.out) {
    writeFileSync(join(args.out, 'leak-report.txt'), formatReport(json))
    writeFileSync(join(args.out, 'heapspec.json'), JSON.stringify(json, null, 2) + '\n')
  }
  return runFails(json) ? 1 : 0
}

function report(dirs: string[]): number {
  if (dirs.length === 0) throw new BadOptionError(`heapspec: report needs at least one DIR.\n${USAGE}`)
  let failed = false
  for (const dir of dirs) {
    let json: RunJson
    try {
      json = JSON.parse(readFileSync(join(dir, 'heapspec.json'), 'utf8')) as RunJson
    } catch (error) {
      throw new BadOptionError(`heapspec: cannot read ${join(dir, 'heapspec.json')}: ${(error as Error).message}. Point at a directory written by heapspec run --out.`, { cause: error })
    }
    process.stdout.write(formatReport(json, { color: useColor(process.stdout) }))
    failed ||= runFails(json)
  }
  return failed ? 1 : 0
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === 'run') {
    const out = rest.indexOf('--out')
    if (out >= 0 && rest[out + 1]) mkdirSync(rest[out + 1]!, { recursive: true })
    return run(rest)
  }
  if (command === 'include') {
    process.stdout.write(join(packageRoot(), 'src') + '\n')
    return 0
  }
  if (command === 'report') return report(rest)
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  throw new BadOptionError(`heapspec: ${command === undefined ? 'no command given' : `unknown command ${command}`}.\n${USAGE}`)
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

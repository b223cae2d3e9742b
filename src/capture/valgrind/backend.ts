import { createReadStream } from 'node:fs'
import { readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { execa } from 'execa'
import { BadOptionError, CannotStartError, CaptureFailedError, describeValue } from '../../errors.js'
import { OBSERVED_DEPTH, sortRecords, STACK_DEPTH, summarize } from '../../model/heap.js'
import type { MemoryError, RunJson } from '../../model/types.js'
import type { CaptureBackend, CaptureResult, CaptureSpec } from '../backend.js'
import { unfollowedForksWarning } from '../forks.js'
import { makeRunDir } from '../run-dir.js'
import { descendants, programStdio, supervise } from '../process.js'
import { checkSuppressionFile, defaultSuppressionFile } from '../suppression-files.js'
import { testFunctionNames } from '../test-functions.js'
import { resolveProgram } from '../program.js'
import { withBadReleases } from './bad-releases.js'
import type { MemcheckXml } from './xml.js'
import type { ObjectCode } from './object-code.js'
import { sessionReason, VgdbSession } from './vgdb-session.js'
import { parseXtreeMassif, parseXtreeTotals, type HeapSummary } from './xtree.js'

const NOT_INSTALLED = 'heapspec: valgrind is not installed (looked on PATH). Install it (apt-get install valgrind) or use --backend gdb.'

/**
 * How long a timed-out program gets between SIGTERM and SIGKILL. memcheck runs its leak check when
 * the program dies of SIGTERM, so a hung program still reports what it leaked; this bounds that check.
 */
const STOP_GRACE_MS = 10_000

/** Options heapspec sets itself, and why a user's copy would break the capture. */
const RESERVED_ARGS: { pattern: RegExp; why: string }[] = [
  { pattern: /^--tool(=|$)/, why: 'heapspec runs memcheck and reads its output' },
  { pattern: /^--xml/, why: "heapspec reads memcheck's results from its own XML file" },
  { pattern: /^--log-/, why: "heapspec sends valgrind's messages to its own log file, away from the program's output" },
  { pattern: /^--xtree-memory/, why: "heapspec reads the heap totals from its own xtree memory report" },
  { pattern: /^--leak-check(=(?!full$)|$)/, why: 'heapspec needs the full leak check' },
  { pattern: /^--(show-leak-kinds|show-reachable|show-possibly-lost)(=|$)/, why: 'heapspec reports every leak kind' },
  { pattern: /^--gen-suppressions(?!=all$)/, why: 'heapspec asks memcheck for a suppression for every leak, without prompting' },
  { pattern: /^--(child-silent-after-fork=no|trace-children=yes)$/, why: "a child process's output would be mixed into the run's XML" },
  { pattern: /^--(error-exitcode|exit-on-first-error)(=|$)/, why: "it would replace the program's exit code, which the run reports" },
  { pattern: /^(-h|--help|--help-debug|--help-dyn-options|--version)$/, why: 'valgrind would print it and exit without running the program' },
]

/** Checks the `valgrindArgs` option: extra memcheck options that leave heapspec's own in place. */
export function validateValgrindArgs(args: unknown): asserts args is string[] {
  if (!Array.isArray(args)) {
    throw new BadOptionError(`Expected the \`valgrindArgs\` option to be an array of memcheck options, got ${describeValue(args)}.`)
  }
  for (const arg of args) {
    if (typeof arg !== 'string' || !arg.startsWith('-')) {
      throw new BadOptionError(
        `Expected the \`valgrindArgs\` option to hold memcheck options (--name=value), got ${describeValue(arg)}: valgrind would take it for the program to run. Remove it, or give it as --name=value.`,
      )
    }
    const reserved = RESERVED_ARGS.find((r) => r.pattern.test(arg))
    if (reserved) {
      throw new BadOptionError(`Expected the \`valgrindArgs\` option to leave heapspec's own memcheck options alone, got ${describeValue(arg)}: ${reserved.why}. Remove it from valgrindArgs.`)
    }
  }
}

/** valgrind's path on `env`'s PATH; its absence is the one-line "not installed" error. */
function findValgrind(cwd: string, env: Record<string, string | undefined>): string {
  try {
    return resolveProgram('valgrind', cwd, env)
  } catch (error) {
    throw new CannotStartError(NOT_INSTALLED, { cause: error })
  }
}

/** The files one capture writes, all inside a temporary directory removed afterwards. */
interface RunFiles {
  xml: string
  log: string
  /**
   * memcheck replaces `%p` with the pid: a forked child writes its own report beside the parent's.
   * With `objects`, the massif format (`.ms`), which keeps the allocations of each stack apart.
   */
  xtree: string
}

function memcheckArgs(files: RunFiles, suppressions: string[], extra: string[], observing: boolean): string[] {
  return [
    '--tool=memcheck',
    '--leak-check=full',
    '--show-leak-kinds=all',
    '--errors-for-leak-kinds=definite,indirect,possible',
    // memcheck counts its replacement malloc as a frame, which heapspec drops: one more keeps
    // STACK_DEPTH frames of the program's own, like the GDB backend (with `objects`, as deep as
    // the other backends look for the chosen code).
    `--num-callers=${(observing ? OBSERVED_DEPTH : STACK_DEPTH) + 1}`,
    '--gen-suppressions=all',
    '--child-silent-after-fork=yes',
    '--xml=yes',
    `--xml-file=${files.xml}`,
    // valgrind's text goes here, never into the program's stderr.
    `--log-file=${files.log}`,
    // With --xml=yes memcheck prints no heap summary; the xtree report carries its counters.
    '--xtree-memory=full',
    `--xtree-memory-file=${files.xtree}`,
    // No vgdb FIFOs in /tmp: a killed run would leave them behind.
    '--vgdb=no',
    // The program's mappings, its heap among them, above 4 GiB, as a native heap lies: at memcheck's
    // default (64 MiB) the heap is where 32-bit numbers fall, and its scan takes any such number
    // inside a block for a pointer (ld.so keeps each library's inode number in its link map: on a
    // machine whose libc has an inode there, a lost block read as possibly lost, and one whose start
    // it is as reachable). debugee/field/integers; --aspace-minaddr in valgrindArgs overrides it.
    '--aspace-minaddr=0x100000000',
    ...suppressions.map((file) => `--suppressions=${file}`),
    // After ours, so an allowed option such as --num-callers can override a default.
    ...extra,
  ]
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch {
    return -1
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return ''
  }
}

/**
 * How many forks of the program memcheck checked at their end beside the process it started (`pid`):
 * under --child-silent-after-fork its report of such a child is silent, but memcheck still writes
 * the child's xtree report, named by the child's pid. A child that execs another program writes none.
 */
async function checkedForks(files: RunFiles, pid: number): Promise<number> {
  const [before, after] = basename(files.xtree).split('%p') as [string, string]
  const own = `${before}${pid}${after}`
  const names = await readdir(dirname(files.xtree)).catch(() => [])
  return names.filter((name) => name !== own && name.startsWith(before) && name.endsWith(after) && /^\d+$/.test(name.slice(before.length, name.length - after.length))).length
}

/** valgrind's own complaint: its `valgrind: ...` lines, or the log's FATAL lines. */
function valgrindReason(stderr: string, log: string): string | undefined {
  const said = stderr
    .split('\n')
    .filter((line) => line.startsWith('valgrind: ') && !/Use --help/.test(line))
    .map((line) => line.slice('valgrind: '.length).trim())
  if (said.length > 0) return said.join('; ')
  const fatal = log
    .split('\n')
    .map((line) => line.replace(/^==\d+==\s?/, '').trim())
    .filter(Boolean)
  const at = fatal.findIndex((line) => /^(FATAL|valgrind:)/.test(line))
  if (at >= 0) return fatal.slice(at, at + 2).filter((line) => line !== 'exiting now.').join(' ')
  return undefined
}

function describeEnd(outcome: { exitCode: number | undefined; signal: string | undefined }): string {
  return outcome.signal ? `valgrind killed by ${outcome.signal}` : `valgrind exit ${outcome.exitCode ?? 'unknown'}`
}

/** A frame's address as a number (memcheck's XML gives it in hex). */
function frameAddress(pc: string | undefined): number | undefined {
  return pc === undefined ? undefined : parseInt(pc, 16)
}

/** Aborts when either signal does (AbortSignal.any is Node 20.3+). */
function eitherSignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  if (!a) return b
  const both = new AbortController()
  for (const signal of [a, b]) {
    if (signal.aborted) both.abort()
    else signal.addEventListener('abort', () => both.abort(), { once: true })
  }
  return both.signal
}

/** The Valgrind backend: the program under memcheck, memcheck's full verdict in the run's shape. */
export class ValgrindBackend implements CaptureBackend {
  readonly name = 'valgrind'

  async probe(): Promise<void> {
    const valgrind = findValgrind(process.cwd(), process.env)
    const result = await execa(valgrind, ['--version'], { reject: false, timeout: 30_000 })
    if (result.exitCode !== 0 || !/^valgrind-\d/.test(String(result.stdout))) {
      const said = String(result.stderr || result.stdout || result.message).split('\n')[0]
      throw new CannotStartError(
        `heapspec: valgrind at ${valgrind} does not run (valgrind --version: ${said || `exit ${result.exitCode}`}). Reinstall it (apt-get install valgrind) or use --backend gdb.`,
      )
    }
  }

  async capture(spec: CaptureSpec): Promise<CaptureResult> {
    validateValgrindArgs(spec.valgrindArgs)
    // heapspec's defaults first, as the other backends apply them
    const suppressions = [defaultSuppressionFile(), ...spec.suppressions.map((file) => checkSuppressionFile(file, spec.cwd))]
    const valgrind = findValgrind(spec.cwd, spec.env)
    if (spec.tests && !spec.testFunctions) spec = { ...spec, testFunctions: await testFunctionNames(spec.command[0]!, spec.tests) }
    const why = sessionReason(spec)
    // memcheck's monitor commands take a file name as one word.
    const base = why !== undefined && /\s/.test(tmpdir()) ? '/tmp' : tmpdir()
    const dir = await makeRunDir('heapspec-valgrind-', base)
    let session: VgdbSession | undefined
    try {
      const xtree = join(dir, spec.objects.length > 0 ? 'xtmemory.%p.ms' : 'xtmemory.%p')
      const files: RunFiles = { xml: join(dir, 'memcheck.xml'), log: join(dir, 'valgrind.log'), xtree }
      // Only a program with test cases (or chosen objects) pays for gdb and vgdb; any other runs exactly as before.
      if (why !== undefined) session = await VgdbSession.open(spec, valgrind, dir, files.log, why)
      return await this.captureIn(spec, valgrind, suppressions, files, session)
    } finally {
      session?.close()
      await rm(dir, { recursive: true, force: true })
    }
  }

  private async captureIn(spec: CaptureSpec, valgrind: string, suppressions: string[], files: RunFiles, session: VgdbSession | undefined): Promise<CaptureResult> {
    // The program as the user typed it (valgrind finds it on the same PATH): memcheck's client gets it as argv[0].
    const args = [...memcheckArgs(files, suppressions, spec.valgrindArgs, spec.objects.length > 0), ...(session?.valgrindArgs ?? []), spec.displayCommand[0]!, ...spec.command.slice(1)]
    const display = spec.displayCommand.join(' ')

    // On timeout the program gets SIGTERM first: memcheck then still runs its leak check and
    // finishes its XML. supervise's own deadline, later, kills the whole tree if that hangs too.
    let ended = false // valgrind gone before its pid was known: no gdb to start for it
    const outcome = await supervise(valgrind, args, {
      cwd: spec.cwd,
      env: spec.env,
      stdio: programStdio(spec.stdio),
      blockingFds: spec.stdio === 'inherit' ? [0, 1, 2] : [],
      timeoutMs: spec.timeoutMs,
      signal: session ? eitherSignal(spec.signal, session.signal) : spec.signal,
      stop: spec.stop,
      interrupt: {
        request: (pid, launched) => {
          // valgrind runs the program in its own process; anything below it is the program's
          // children, which no leak check will wait for (the launcher kills them itself on SIGTERM).
          for (const below of launched ? [] : descendants(pid)) {
            try {
              process.kill(below, 'SIGKILL')
            } catch {
              // already gone
            }
          }
          try {
            process.kill(pid, 'SIGTERM')
          } catch {
            // already gone
          }
        },
        graceMs: STOP_GRACE_MS,
      },
      onSpawn: (_child, started) => {
        void started.then((pid) => {
          if (session && pid !== undefined && !ended) session.start(pid)
        })
      },
    })
    ended = true
    const stopped = outcome.timedOut

    await session?.finish()
    // In a per-test capture the log is a FIFO the session has read.
    const log = session ? session.logText : await readText(files.log)
    if (spec.debug) process.stderr.write(`heapspec: ${valgrind} ${args.join(' ')}\n${log}`)
    if (outcome.aborted && session && !spec.signal?.aborted) {
      // gdb gave up, so valgrind was stopped: it would have waited for gdb at the next test case.
      const { attached, reason } = session.gdbFailure
      if (!attached) {
        throw new CannotStartError(
          `heapspec: gdb could not attach to memcheck's gdbserver to follow the test cases of ${display} (${reason}). ` +
            `Check that gdb runs Python (gdb -batch -ex 'python print(1)'); run with HEAPSPEC_DEBUG=1 to see gdb's transcript.`,
        )
      }
      throw new CaptureFailedError(
        `heapspec: the valgrind capture of ${display} lost gdb, which stops the program at each test case (${reason}). Run with HEAPSPEC_DEBUG=1 to see gdb's transcript.`,
      )
    }
    if (outcome.aborted) throw new CaptureFailedError(`heapspec: the valgrind capture of ${display} was interrupted.`)
    const killed = outcome.killedAfterGrace // the grace ran out too: valgrind died mid-write
    const stderr = spec.stdio === 'pipe' ? outcome.stderr : ''

    const xmlSize = await fileSize(files.xml)
    if (xmlSize <= 0 && !stopped) {
      const reason =
        valgrindReason(stderr, log) ??
        (spec.stdio === 'inherit' ? `${describeEnd(outcome)}; its message is printed above` : describeEnd(outcome))
      throw new CannotStartError(`heapspec: valgrind could not start ${display}: ${reason}. Check that the program runs on its own, and valgrind's options.`)
    }

    // Streamed: a long run's XML can be large. Stopped before memcheck wrote any, it reads as empty.
    // loaded here: the XML stream parser (saxes) is for valgrind runs only, not every start-up
    const { parseMemcheckXml } = await import('./xml.js')
    const xml = await parseMemcheckXml(xmlSize > 0 ? createReadStream(files.xml) : '', { cwd: spec.cwd, source: files.xml, allowTruncated: true })
    if (!xml.complete && !killed) {
      const reason = valgrindReason(stderr, log) ?? describeEnd(outcome)
      throw new CaptureFailedError(
        `heapspec: the valgrind capture of ${display} stopped before memcheck finished its report (${reason}). ` +
          `If the program exec()s another program, run that one instead; else run with HEAPSPEC_DEBUG=1 to see valgrind's log.`,
      )
    }
    if (xml.complete && !xml.finished) {
      // memcheck closed its XML without running the program to the end: a setup error (a bad
      // suppression file, an option valgrind rejects) it reports in its log.
      const reason = valgrindReason(stderr, log) ?? describeEnd(outcome)
      throw new CannotStartError(`heapspec: valgrind could not start ${display}: ${reason}. Fix the option or file it names and run again.`)
    }

    const warnings: string[] = []
    const seconds = (outcome.stoppedAfterMs ?? 0) / 1000
    let heap: HeapSummary = { totals: { allocations: 0, frees: 0, bytesAllocated: 0 }, inUseAtExit: { bytes: 0, blocks: 0 } }
    let heapRead = false
    const code = spec.objects.length > 0 ? session?.objectCode : undefined
    // With `objects`, only the blocks allocated with a chosen object's code on the stack.
    let found = code ? xml.leaks.filter((leak) => leak.stack.some((frame) => code.holdsFrame({ ...frame, pc: frameAddress(frame.pc) }))) : xml.leaks
    if (xml.complete) {
      try {
        heap = await this.heapSummary(files, xml, code)
        heapRead = true
      } catch (error) {
        // Killed between the end of its XML and its xtree report: the leaks stand, the totals don't.
        if (!killed) throw error
        warnings.push(`valgrind was killed before it wrote the heap totals; they are unknown (shown as 0)`)
      }
    } else {
      // Killed mid-report: the errors already written stand, but a leak list cut short would
      // understate the leaks, so none is reported rather than part of one.
      found = []
      warnings.push(
        `the program was stopped after ${seconds} s and killed when it did not end within ${STOP_GRACE_MS / 1000} s of SIGTERM; ` +
          `memcheck's leak check did not complete, so no leaks are reported and the heap totals are unknown (shown as 0)`,
      )
    }
    if (stopped && xml.complete) warnings.push(`the program was stopped after ${seconds} s; memcheck's figures are those at that moment`)
    const forks = xml.pid === null ? 0 : await checkedForks(files, xml.pid)
    if (forks > 0) warnings.push(unfollowedForksWarning(forks))

    const signal = outcome.signal ?? (killed ? 'SIGKILL' : null)
    const leaks = session ? session.attribute(found) : sortRecords(found)
    // memcheck's XML does not count what it suppressed; the listing at the program's end does
    const suppressed = session?.suppressedAtExit(found)
    const errors = session?.attributeErrors(xml.errors)
    if (session) warnings.unshift(...session.warnings)
    // memcheck's totals count the bad frees and reallocs too; with `objects`, the chosen objects' own
    const counted = (list: MemoryError[]): MemoryError[] => (code ? list.filter((e) => e.stack.some((f) => code.holdsFrame({ ...f, pc: frameAddress(f.pc) }))) : list)
    const counts = heapRead ? withBadReleases(heap.totals, counted(xml.errors), xml.badReleases) : { totals: heap.totals, reallocs: 0 }
    const tests = (session?.tests(found, errors!.byTest) ?? []).map((test) => {
      if (!heapRead) return test
      const { totals } = withBadReleases(test, counted(test.errors ?? []), xml.badReleases, errors!.origin)
      return { ...test, allocations: totals.allocations, frees: totals.frees }
    })
    if (counts.reallocs > 0) {
      warnings.push(
        `memcheck counted ${counts.reallocs} realloc call${counts.reallocs === 1 ? '' : 's'} of a pointer that was no live block as an allocation of the size asked for; ` +
          `that size is in none of its outputs heapspec reads, so bytesAllocated leaves ${counts.reallocs === 1 ? 'it' : 'them'} out`,
      )
    }
    const run = {
      schema: 1,
      backend: 'valgrind',
      program: {
        command: spec.displayCommand,
        // valgrind ends the way its program did: it re-raises a fatal signal after its leak check.
        exitCode: signal ? null : (outcome.exitCode ?? null),
        signal,
        ...(stopped ? { timedOut: true } : {}),
      },
      totals: counts.totals,
      inUseAtExit: heap.inUseAtExit,
      leakSummary: summarize(leaks),
      ...(suppressed ? { suppressed } : {}),
      leaks,
      tests,
      errors: errors?.errors ?? xml.errors,
      ...(warnings.length > 0 ? { warnings } : {}),
    } satisfies RunJson
    return { run, stdout: spec.stdio === 'pipe' ? outcome.stdout : '', stderr }
  }

  /** The heap summary of the process memcheck reported on (a forked child writes its own report). */
  private async heapSummary(files: RunFiles, xml: MemcheckXml, code: ObjectCode | undefined): Promise<HeapSummary> {
    const path = files.xtree.replace('%p', String(xml.pid))
    const missing = (error: unknown): CaptureFailedError =>
      new CaptureFailedError(
        `heapspec: memcheck finished but wrote no xtree memory report for pid ${xml.pid} (${path}), so the heap totals are unknown. Run with HEAPSPEC_DEBUG=1 to see valgrind's log.`,
        { cause: error },
      )
    if (code) {
      // Streamed: Node's report in this format is about 100 MB.
      const input = createReadStream(path)
      await new Promise<void>((resolve, reject) => input.once('open', () => resolve()).once('error', (error) => reject(missing(error))))
      return parseXtreeMassif(input, (frame) => code.holdsFrame(frame), path)
    }
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      throw missing(error)
    }
    return parseXtreeTotals(text, path)
  }
}

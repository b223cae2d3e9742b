import { closeSync, constants, createReadStream, existsSync, openSync, realpathSync, writeSync } from 'node:fs'
import { readFile, unlink } from 'node:fs/promises'
import { Socket } from 'node:net'
import { basename, dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { execa } from 'execa'
import { CannotStartError } from '../../errors.js'
import type { Amount, HeapTotals, LeakRecord, MemoryError, TestCaseSummary } from '../../model/types.js'
import { packageRoot } from '../../package-root.js'
import type { CaptureSpec } from '../backend.js'
import { killTree, supervise, type Supervised } from '../process.js'
import { resolveProgram } from '../program.js'
import { parseBlockListing, parseShownRecords, stripPid, type BlockListing } from './block-list.js'
import { elfNamesSymbol } from './elf-symbols.js'
import { ErrorAttribution, type AttributedErrors, type ErrorCounts } from './error-attribution.js'
import { ObjectCode } from './object-code.js'
import { TestCaseAttribution } from './test-cases.js'
import { parseXtreeMassif, parseXtreeTotals } from './xtree.js'

/** The marker functions of heapspec.h. */
const MARKERS = ['heapspec_test_begin', 'heapspec_test_end'] as const

/**
 * Symbols of a program linked with GoogleTest: the event repeater the GDB-side script breaks in
 * (GoogleTest linked in statically), or testing::Test's constructor, which every TEST's class calls
 * (imported from libgtest.so).
 */
const GOOGLE_TEST = ['_ZN7testing8internal17TestEventRepeater11OnTestStartERKNS_8TestInfoE', '_ZN7testing4TestC2Ev'] as const

/** How long gdb gets to finish once valgrind has ended (it only has to notice the end). */
const GDB_GRACE_MS = 10_000

/** How long vgdb waits for valgrind's gdbserver to appear (a big program's debug info takes a while); a valgrind that ends first ends the wait. */
const VGDB_WAIT_SECONDS = 600

/** The GDB-side script ships under src/ (a build under dist/ has no copy). */
function scriptPath(): string {
  return join(packageRoot(), 'src', 'capture', 'valgrind', 'heapspec_vgdb.py')
}

/** Quotes a word for /bin/sh: gdb starts vgdb through the shell. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`
}

/** Resolves to 'late' after `ms`, without keeping the process alive for it. */
function delay(ms: number): Promise<'late'> {
  return new Promise((resolve) => setTimeout(() => resolve('late'), ms).unref())
}

function lastLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1)
}

/** The value of the last `--name=value` among memcheck options, if any. */
function lastOption(args: string[], name: string): string | undefined {
  let value: string | undefined
  for (const arg of args) if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3)
  return value
}

/** Whether `program` is Node.js, whose scripts can bracket test cases with heapspec/markers. */
function isNode(program: string): boolean {
  if (/^(node|nodejs)$/.test(basename(program))) return true
  try {
    return realpathSync(program) === realpathSync(process.execPath)
  } catch {
    return false
  }
}

/**
 * Why a capture needs gdb on memcheck's gdbserver, or undefined when it does not: per-test
 * attribution (the `tests` option; heapspec.h's markers; GoogleTest's tests; Node, whose scripts
 * may use heapspec/markers) or the `objects` option (only chosen objects' blocks, which memcheck
 * must list as the program runs). Only then does the Valgrind backend pay for gdb and vgdb.
 */
export function sessionReason(spec: CaptureSpec): string | undefined {
  const program = spec.command[0]!
  const shown = spec.displayCommand[0]
  if (spec.tests !== undefined) return 'the tests option is set'
  if (spec.objects.length > 0) return 'the objects option is set'
  if (elfNamesSymbol(program, MARKERS)) return `${shown} has heapspec.h's test-case markers`
  if (elfNamesSymbol(program, GOOGLE_TEST)) return `${shown} is a GoogleTest suite`
  if (isNode(program)) return `${shown} is Node.js, whose scripts may mark test cases (heapspec/markers)`
  return undefined
}

/** A listing memcheck wrote to its log: the lines of each section, until its `end` line. */
interface Segment {
  mode: 'full' | 'summary'
  shown: string[]
  blocks: string[]
  section: 'shown' | 'select' | 'blocks'
}

/** The line the GDB-side script has memcheck print around each listing (`v.info n_errs_found MSG`). */
const SEGMENT_MARK = /^n_errs_found \d+ n_errs_shown \d+ \(vgdb-error -?\d+\) heapspec (\d+) (full|summary|select|blocks|end)$/

/** Record numbers as block_list takes them: a run of consecutive ones as one range. */
function recordRanges(numbers: number[]): string[] {
  const ranges: string[] = []
  const sorted = [...new Set(numbers)].sort((a, b) => a - b)
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
    ranges.push(i === j ? String(sorted[i]) : `${sorted[i]}..${sorted[j]}`)
    i = j + 1
  }
  return ranges
}

/**
 * Per-test attribution under memcheck: gdb attached to valgrind's gdbserver through vgdb stops the
 * program at each test-case boundary, where memcheck reports the heap totals and the live blocks.
 * memcheck writes the listings to its log, which is a FIFO this session reads while the program
 * runs (so nothing piles up on disk). One session per capture; `open` it before valgrind starts.
 *
 * With the `objects` option (a Node addon inside Node) only the blocks whose allocator's caller is
 * in a chosen object count, as under the GDB backend: at each boundary the session reads the heap
 * totals by allocation stack (a massif-format xtree report) and tells gdb, on a second FIFO, which
 * loss records to list, and whether a boundary needs a leak search at all.
 */
export class VgdbSession {
  /** memcheck options the session needs, after the user's (later options win). */
  readonly valgrindArgs: string[]
  private readonly attribution = new TestCaseAttribution()
  private readonly errorAttribution = new ErrorAttribution()
  /** Each point's error counters and (after repeats) memcheck's error list, until its point line comes. */
  private readonly errorCounts = new Map<number, { counts?: ErrorCounts; allErrors?: string }>()
  private readonly abort = new AbortController()
  private readonly logLines: string[] = []
  private readonly listings = new Map<number, BlockListing | Error>()
  private readonly waiting = new Map<number, (listing: BlockListing | Error | undefined) => void>()
  private current: { id: number; segment: Segment } | undefined
  /** Objects mode: the shown loss records of each point, once memcheck has printed all of them. */
  private readonly shown = new Map<number, string[]>()
  private readonly shownWaiting = new Map<number, (lines: string[] | undefined) => void>()
  /** Objects mode: the chosen objects' code at each point, read when gdb asked about it (a T line). */
  private readonly codeAt = new Map<number, ObjectCode>()
  /** Objects mode: the chosen objects' heap totals at each point, and at the last point listed. */
  private readonly objectTotals = new Map<number, HeapTotals | Error>()
  private lastListed: HeapTotals = { allocations: 0, frees: 0, bytesAllocated: 0 }
  private lastCode: ObjectCode
  private valgrindPid: number | undefined
  private logEnded = false
  private logDone: Promise<void>
  private readonly failures: string[] = []
  private readonly notes: string[] = []
  private attached = false
  private finished = false
  private gdbRun: Promise<Supervised> | undefined
  private gdbPid: number | undefined
  private reading: Promise<void> = Promise.resolve()
  private stopped = false
  private readonly prefix: string

  private constructor(
    private readonly spec: CaptureSpec,
    private readonly dir: string,
    private readonly vgdb: string,
    private readonly log: Socket,
    /** Objects mode: the FIFO on which gdb reads which loss records to list, open for writing. */
    private readonly select: { path: string; fd: number } | undefined,
  ) {
    const prefix = join(dir, 'vgdb')
    this.prefix = prefix
    this.lastCode = ObjectCode.none(spec.objects)
    this.valgrindArgs = [
      '--vgdb=yes',
      // Stop before the first instruction, so the breakpoints are in place; and after the last
      // one, so the final heap is listed just before memcheck's own leak check.
      '--vgdb-error=0',
      '--vgdb-stop-at=exit',
      // Inside the run's directory: no FIFOs left in /tmp by a killed run.
      `--vgdb-prefix=${prefix}`,
      // Freed blocks are recycled strictly in order, so an address freed during a test case is not
      // handed out again within it (see TestCaseAttribution): big blocks would otherwise go first.
      ...(lastOption(spec.valgrindArgs, 'freelist-big-blocks') === undefined ? ['--freelist-big-blocks=0'] : []),
    ]
    const lines = createInterface({ input: log, crlfDelay: Infinity })
    lines.on('line', (line) => this.onLogLine(line))
    this.logDone = new Promise<void>((resolve) => {
      log.once('close', () => {
        this.endLog()
        resolve()
      })
    })
    log.on('error', () => undefined)
  }

  /**
   * Prepares a session in `dir`: checks that gdb and vgdb are there, and makes `logPath` a FIFO
   * opened for reading (so valgrind's open of its log file never blocks).
   */
  static async open(spec: CaptureSpec, valgrind: string, dir: string, logPath: string, why: string): Promise<VgdbSession> {
    try {
      resolveProgram('gdb', spec.cwd, spec.env)
    } catch (error) {
      const what = spec.objects.length > 0 ? "to follow the chosen objects' blocks and the test cases" : 'to attribute leaks to test cases'
      throw new CannotStartError(`heapspec: gdb is not installed (looked on PATH); the valgrind backend needs it ${what}, as ${why}. Install it (apt-get install gdb).`, {
        cause: error,
      })
    }
    let vgdb = join(dirname(valgrind), 'vgdb')
    if (!existsSync(vgdb)) {
      try {
        vgdb = resolveProgram('vgdb', spec.cwd, spec.env)
      } catch (error) {
        throw new CannotStartError(`heapspec: vgdb, valgrind's gdbserver relay, is missing (looked beside ${valgrind} and on PATH). Reinstall valgrind (apt-get install valgrind).`, {
          cause: error,
        })
      }
    }
    await execa('mkfifo', ['-m', '600', logPath])
    // Read-only and non-blocking: the open returns at once, and the pipe reports its end only once
    // a writer (valgrind) has come and gone.
    const fd = openSync(logPath, constants.O_RDONLY | constants.O_NONBLOCK)
    let select: { path: string; fd: number } | undefined
    if (spec.objects.length > 0) {
      const path = join(dir, 'select')
      await execa('mkfifo', ['-m', '600', path])
      // Read and write: the open returns at once, and gdb's open for reading finds a writer.
      select = { path, fd: openSync(path, constants.O_RDWR) }
    }
    return new VgdbSession(spec, dir, vgdb, new Socket({ fd, readable: true, writable: false }), select)
  }

  /** Objects mode: the chosen objects' code as last seen in the process (for memcheck's final report). */
  get objectCode(): ObjectCode {
    return this.lastCode
  }

  /** Aborts when gdb gives up: valgrind must not wait for it at a breakpoint forever. */
  get signal(): AbortSignal {
    return this.abort.signal
  }

  /** valgrind's log as text, without the listings. */
  get logText(): string {
    return this.logLines.join('\n') + (this.logLines.length > 0 ? '\n' : '')
  }

  /** Why gdb stopped early, and whether it had attached by then: the capture cannot go on. */
  get gdbFailure(): { attached: boolean; reason: string } {
    return { attached: this.attached, reason: (this.failures[0] ?? 'gdb ended early').replace(/\.$/, '') }
  }

  /** Starts gdb on the valgrind process `pid`, which waits for it before running the program. */
  start(pid: number): void {
    const vgdb = [shellQuote(this.vgdb), `--wait=${VGDB_WAIT_SECONDS}`, `--pid=${pid}`, `--vgdb-prefix=${shellQuote(this.prefix)}`].join(' ')
    const heuristics = lastOption(this.spec.valgrindArgs, 'leak-check-heuristics') ?? 'all'
    this.valgrindPid = pid
    const config = { fd: 3, dir: this.dir, vgdb, tests: this.spec.tests ? (this.spec.testFunctions ?? []) : undefined, heuristics, pid, objects: this.select !== undefined, select: this.select?.path }
    const args = [
      '-nx',
      '-q',
      '-batch',
      '-ex',
      `python import json, base64; HEAPSPEC = json.loads(base64.b64decode('${Buffer.from(JSON.stringify(config)).toString('base64')}'))`,
      '-x',
      scriptPath(),
      this.spec.command[0]!,
    ]
    this.gdbRun = supervise('gdb', args, {
      cwd: this.spec.cwd,
      // gdb starts vgdb through $SHELL with a socket for stdin, which makes bash read ~/.bashrc:
      // whatever that runs (pyenv's rehash waits up to 60 s for a lock another shell holds) would
      // delay every capture. sh reads nothing for -c.
      env: { ...this.spec.env, SHELL: '/bin/sh' },
      // gdb reports every stop on stdout: only a transcript wants it.
      stdio: ['ignore', this.spec.debug ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      buffer: { stdout: false, stderr: true, fd3: false } as never,
      timeoutMs: this.spec.timeoutMs === undefined ? undefined : this.spec.timeoutMs + 2 * GDB_GRACE_MS,
      signal: this.spec.signal,
      onSpawn: (child) => {
        this.gdbPid = child.pid
        const events = (child.stdio as unknown as NodeJS.ReadableStream[])[3]!
        const lines = createInterface({ input: events, crlfDelay: Infinity })
        this.reading = (async () => {
          let queue = Promise.resolve()
          let answering = Promise.resolve()
          for await (const line of lines) {
            // gdb waits for the answer with the program stopped: questions skip the queue.
            const question = /^([TS]) (\d+)(?: (\w))?$/.exec(line)
            if (question) {
              const [, what, id, kind] = question as unknown as [string, 'T' | 'S', string, string | undefined]
              answering = answering.then(() => (what === 'T' ? this.checkPoint(Number(id), kind ?? '') : this.selectRecords(Number(id))))
            } else if (line.startsWith('L ')) {
              answering = answering.then(() => this.objectLoaded())
            } else {
              queue = queue.then(() => this.onEvent(line))
            }
          }
          await answering
          await queue
        })()
        if (this.spec.debug) {
          child.stdout?.pipe(process.stderr)
          child.stderr?.pipe(process.stderr)
        }
      },
    })
    // gdb gone before the program: whatever stopped it, valgrind would wait at the next stop.
    void this.gdbRun.then(async (outcome) => {
      await this.reading
      if (this.finished) return
      if (this.failures.length === 0) this.failures.push(lastLine(outcome.stderr) ?? `gdb exit ${outcome.exitCode ?? outcome.signal}`)
      this.abort.abort()
    })
  }

  /** After valgrind has ended: lets gdb finish (or stops it), and reads the rest of the log. */
  async finish(): Promise<void> {
    this.closeAnswers()
    if (this.gdbRun) {
      // Not attached yet: valgrind is gone, so gdb (vgdb) could only wait for it.
      if (!this.attached && this.gdbPid !== undefined) killTree(this.gdbPid)
      const outcome = await Promise.race([this.gdbRun, delay(GDB_GRACE_MS)])
      if (outcome === 'late' && this.gdbPid !== undefined) killTree(this.gdbPid)
      await this.gdbRun
      // A point whose listing never came (valgrind killed mid-listing, while a child it forked
      // keeps the log open) must not hold the capture up.
      const waited = await Promise.race([this.reading.then(() => 'read' as const), delay(GDB_GRACE_MS)])
      if (waited !== 'read') this.endLog()
      await this.reading
    }
    // valgrind closed the log when it ended; a child it forked may still hold it open.
    await Promise.race([this.logDone, delay(1000)])
    this.close()
  }

  /** No more listings will come: every point still waiting for one goes without. */
  private endLog(): void {
    this.logEnded = true
    for (const [id, resolveWaiter] of this.waiting) resolveWaiter(this.listings.get(id))
    this.waiting.clear()
    for (const [id, resolveWaiter] of this.shownWaiting) resolveWaiter(this.shown.get(id))
    this.shownWaiting.clear()
  }

  /** Releases the log FIFO and the answers' FIFO. Safe to call twice. */
  close(): void {
    this.log.destroy()
    this.closeAnswers()
  }

  /** No more answers: gdb, if it still waits for one (valgrind died at a point), reads the end and stops. */
  private closeAnswers(): void {
    if (this.select && this.select.fd >= 0) {
      closeSync(this.select.fd)
      this.select.fd = -1
    }
  }

  /** The loss records a full leak search of point `id` showed, once all are in the log. */
  private shownRecords(id: number): Promise<string[] | undefined> {
    const done = this.shown.get(id)
    if (done !== undefined || this.logEnded) {
      this.shown.delete(id)
      return Promise.resolve(done)
    }
    return new Promise((resolve) => {
      this.shownWaiting.set(id, (lines) => {
        this.shown.delete(id)
        resolve(lines)
      })
    })
  }

  /** Objects mode: answers gdb, which waits with the program stopped, with one line. */
  private answer(line: string): void {
    // A line is far below a pipe's capacity, and gdb reads each before it asks again: this never blocks.
    if (this.select && this.select.fd >= 0) writeSync(this.select.fd, `${line}\n`)
  }

  /** The chosen objects' code as mapped now, added to what was seen before (the program stands still). */
  private readCode(): ObjectCode {
    try {
      if (this.valgrindPid !== undefined) this.lastCode = this.lastCode.with(ObjectCode.read(this.valgrindPid, this.spec.objects))
    } catch {
      // valgrind is gone: what was seen stands
    }
    return this.lastCode
  }

  /**
   * Objects mode: an object was loaded. A chosen one may be gone again before the next point (an
   * addon a Node Worker loads is unloaded at the Worker's exit): its code is read now, so the blocks
   * its frames allocated stay its.
   */
  private objectLoaded(): Promise<void> {
    this.readCode()
    this.answer('ok')
    return Promise.resolve()
  }

  /**
   * Objects mode: the chosen objects' totals at point `id` (a B, E, e or Q), from its xtree report,
   * and whether a B or Q needs a listing: not when the objects have allocated and freed nothing
   * since the last one, so their blocks are the same (a test run from JavaScript between two markers
   * leaves the addon idle). Node's heap takes most of a second to search.
   */
  private async checkPoint(id: number, kind: string): Promise<void> {
    // The program stands still until the answer: its mappings are those of this point.
    const code = this.readCode()
    this.codeAt.set(id, code)
    const path = join(this.dir, `xt-${id}.ms`)
    let totals: HeapTotals | Error
    try {
      totals = (await parseXtreeMassif(createReadStream(path), (frame) => code.holdsFrame(frame), path)).totals
    } catch (error) {
      totals = error as Error
    }
    await unlink(path).catch(() => undefined)
    this.objectTotals.set(id, totals)
    const last = this.lastListed
    const same = !(totals instanceof Error) && totals.allocations === last.allocations && totals.frees === last.frees && totals.bytesAllocated === last.bytesAllocated
    if (same && (kind === 'B' || kind === 'Q')) {
      this.answer('same')
      return
    }
    if (!(totals instanceof Error)) this.lastListed = totals
    this.answer('list')
  }

  /**
   * Objects mode: answers gdb, stopped at point `id`, with the loss records to list, those whose
   * blocks allocated with a chosen object's code on the stack. Node's whole heap would
   * take seconds to list at every point; the addon's blocks are a handful of records.
   */
  private async selectRecords(id: number): Promise<void> {
    const shown = await this.shownRecords(id)
    const code = this.codeAt.get(id) ?? this.lastCode
    const chosen = parseShownRecords(shown ?? []).filter((r) => r.pcs.some((pc) => code.holdsPc(pc)))
    this.answer(recordRanges(chosen.map((r) => r.number)).join(' '))
  }

  /**
   * The test cases, in the order they began; `leaks`: memcheck's final loss records (what it did
   * not suppress); `errors`: each test case's memory errors (from `attributeErrors`).
   */
  tests(leaks: LeakRecord[], errors: AttributedErrors['byTest']): TestCaseSummary[] {
    return this.attribution.summaries(leaks).map((summary, i) => ({ ...summary, errors: errors.get(i) ?? [] }))
  }

  /** memcheck's errors (its XML, in order), each with the test case that made it first, and each test case's own. */
  attributeErrors(errors: MemoryError[]): AttributedErrors {
    const result = this.errorAttribution.assign(errors, (i) => this.attribution.nameOf(i), this.stopped ? -1 : this.attribution.running)
    this.notes.push(...result.problems)
    return result
  }

  /** What memcheck's final leak check suppressed (blocks at the end in none of `leaks`), when the end was listed. */
  suppressedAtExit(leaks: LeakRecord[]): Amount | undefined {
    return this.attribution.suppressedAtExit(leaks)
  }

  /** memcheck's loss records, each split by the test case that allocated its blocks. */
  attribute(leaks: LeakRecord[]): LeakRecord[] {
    return this.attribution.attribute(leaks)
  }

  /** Marker misuse, and what went wrong on gdb's side once the program ran. */
  get warnings(): string[] {
    return [...this.attribution.warnings, ...this.notes, ...this.failures.map((f) => `per-test attribution: ${f}`)]
  }

  private onLogLine(line: string): void {
    const mark = SEGMENT_MARK.exec(line)
    if (mark) {
      const id = Number(mark[1])
      const what = mark[2]!
      if (what === 'full' || what === 'summary') {
        this.current = { id, segment: { mode: what, shown: [], blocks: [], section: 'shown' } }
      } else if (this.current?.id === id && what === 'select') {
        // gdb waits for the host to pick the records to list from these
        this.current.segment.section = 'select'
        this.shown.set(id, this.current.segment.shown)
        this.shownWaiting.get(id)?.(this.current.segment.shown)
        this.shownWaiting.delete(id)
      } else if (this.current?.id === id && what === 'blocks') {
        this.current.segment.section = 'blocks'
      } else if (this.current?.id === id && what === 'end') {
        const { segment } = this.current
        this.current = undefined
        let listing: BlockListing | Error
        try {
          listing = parseBlockListing(segment.shown, segment.blocks, segment.mode === 'full', `listing ${id}`)
        } catch (error) {
          listing = error as Error
        }
        this.listings.set(id, listing)
        this.waiting.get(id)?.(listing)
        this.waiting.delete(id)
      }
      return
    }
    if (this.current) {
      const { segment } = this.current
      if (segment.section !== 'select') segment[segment.section].push(line)
      return
    }
    // Monitor commands' own chatter stays out of the log the run reports.
    const text = stripPid(line)
    if (/^Writing xtree memory report to|^xtree memory report: .*\/xt-\d+$/.test(text)) return
    this.logLines.push(line)
  }

  /** The listing of point `id`, once memcheck has written all of it; undefined if the log ended first. */
  private listing(id: number): Promise<BlockListing | Error | undefined> {
    const done = this.listings.get(id)
    if (done !== undefined || this.logEnded) {
      this.listings.delete(id)
      return Promise.resolve(done)
    }
    return new Promise((resolve) => {
      this.waiting.set(id, (listing) => {
        this.listings.delete(id)
        resolve(listing)
      })
    })
  }

  private async totalsAt(id: number): Promise<HeapTotals> {
    if (this.select) {
      // Objects mode: only the chosen objects' own allocations count, read when gdb asked about the point.
      const totals = this.objectTotals.get(id)
      this.objectTotals.delete(id)
      this.codeAt.delete(id)
      if (totals instanceof Error) throw totals
      if (totals === undefined) throw new Error(`no xtree report was read for point ${id}`)
      return totals
    }
    const path = join(this.dir, `xt-${id}`)
    const text = await readFile(path, 'utf8')
    await unlink(path)
    return parseXtreeTotals(text, path).totals
  }

  private async onEvent(line: string): Promise<void> {
    const tag = line[0]
    if (tag === 'H') {
      this.attached = true
      return
    }
    if (tag === 'X') {
      this.finished = true
      return
    }
    if (tag === '!') {
      this.failures.push(line.slice(2))
      return
    }
    if (tag === 'W') {
      this.notes.push(line.slice(2))
      return
    }
    if (this.stopped) return
    const errors = /^([AC]) (\d+) (.*)$/.exec(line)
    if (errors) {
      const id = Number(errors[2])
      const at = this.errorCounts.get(id) ?? {}
      if (errors[1] === 'A') at.allErrors = JSON.parse(errors[3]!) as string
      else {
        const [found, shown, shownEnd] = errors[3]!.split(' ').map(Number) as [number, number, number]
        at.counts = { found, shown, shownEnd }
      }
      this.errorCounts.set(id, at)
      return
    }
    const m = /^([BEeQ]) (\d+) ([=+]) ?(.*)$/.exec(line)
    if (!m) return
    const [, kind, idText, flag, name] = m as unknown as [string, string, string, string, string]
    const id = Number(idText)
    // The errors since the last point are the running test case's, before this point changes it.
    const errorsAt = this.errorCounts.get(id)
    this.errorCounts.delete(id)
    if (errorsAt?.counts) this.errorAttribution.point(this.attribution.running, errorsAt.counts, errorsAt.allErrors)
    try {
      const totals = await this.totalsAt(id)
      const listing = flag === '=' ? undefined : await this.listing(id)
      if (listing instanceof Error) throw listing
      if (flag === '+' && listing === undefined) throw new Error(`memcheck's log ended before listing ${id}`)
      switch (kind) {
        case 'B':
          this.attribution.begin(name, totals, listing)
          break
        case 'E':
          this.attribution.end(name, totals, listing!)
          break
        case 'e':
          this.attribution.leave(name, totals, listing!)
          break
        default:
          this.attribution.exit(totals, listing)
      }
    } catch (error) {
      // One unreadable point would misattribute every later block: the figures stop here.
      this.stopped = true
      this.failures.push(`stopped at a test-case boundary (${kind} ${name}): ${(error as Error).message}`)
    }
  }
}

import { constants, existsSync, openSync } from 'node:fs'
import { readFile, unlink } from 'node:fs/promises'
import { Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { execa } from 'execa'
import { CannotStartError } from '../../errors.js'
import type { HeapTotals, LeakRecord, TestCaseSummary } from '../../model/types.js'
import { packageRoot } from '../../package-root.js'
import type { CaptureSpec } from '../backend.js'
import { killTree, supervise, type Supervised } from '../process.js'
import { resolveProgram } from '../program.js'
import { parseBlockListing, stripPid, type BlockListing } from './block-list.js'
import { elfNamesSymbol } from './elf-symbols.js'
import { TestCaseAttribution } from './test-cases.js'
import { parseXtreeTotals } from './xtree.js'

/** The marker functions of heapspec.h. */
const MARKERS = ['heapspec_test_begin', 'heapspec_test_end'] as const

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

/**
 * Whether a capture needs per-test attribution: the `tests` option is set, or the program defines
 * or calls heapspec.h's markers. Only then does the Valgrind backend pay for gdb and vgdb.
 */
export function wantsTestCases(spec: CaptureSpec): boolean {
  return spec.tests !== undefined || elfNamesSymbol(spec.command[0]!, MARKERS)
}

/** A listing memcheck wrote to its log: the lines of each section, until its `end` line. */
interface Segment {
  mode: 'full' | 'summary'
  shown: string[]
  blocks: string[]
  section: 'shown' | 'blocks'
}

/** The line the GDB-side script has memcheck print around each listing (`v.info n_errs_found MSG`). */
const SEGMENT_MARK = /^n_errs_found \d+ n_errs_shown \d+ \(vgdb-error -?\d+\) heapspec (\d+) (full|summary|blocks|end)$/

/**
 * Per-test attribution under memcheck: gdb attached to valgrind's gdbserver through vgdb stops the
 * program at each test-case boundary, where memcheck reports the heap totals and the live blocks.
 * memcheck writes the listings to its log, which is a FIFO this session reads while the program
 * runs (so nothing piles up on disk). One session per capture; `open` it before valgrind starts.
 */
export class VgdbSession {
  /** memcheck options the session needs, after the user's (later options win). */
  readonly valgrindArgs: string[]
  private readonly attribution = new TestCaseAttribution()
  private readonly abort = new AbortController()
  private readonly logLines: string[] = []
  private readonly listings = new Map<number, BlockListing | Error>()
  private readonly waiting = new Map<number, (listing: BlockListing | Error | undefined) => void>()
  private current: { id: number; segment: Segment } | undefined
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
  ) {
    const prefix = join(dir, 'vgdb')
    this.prefix = prefix
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
  static async open(spec: CaptureSpec, valgrind: string, dir: string, logPath: string): Promise<VgdbSession> {
    try {
      resolveProgram('gdb', spec.cwd, spec.env)
    } catch (error) {
      const why = spec.tests ? 'the tests option is set' : `${spec.displayCommand[0]} has heapspec.h's test-case markers`
      throw new CannotStartError(
        `heapspec: gdb is not installed (looked on PATH); the valgrind backend needs it to attribute leaks to test cases, as ${why}. Install it (apt-get install gdb).`,
        { cause: error },
      )
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
    return new VgdbSession(spec, dir, vgdb, new Socket({ fd, readable: true, writable: false }))
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
    const config = { fd: 3, dir: this.dir, vgdb, tests: this.spec.tests?.source, heuristics }
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
      env: this.spec.env,
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
          for await (const line of lines) await this.onEvent(line)
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
  }

  /** Releases the log FIFO. Safe to call twice. */
  close(): void {
    this.log.destroy()
  }

  /** The test cases, in the order they began. */
  tests(): TestCaseSummary[] {
    return this.attribution.summaries()
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
      this.current.segment[this.current.segment.section].push(line)
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
    const m = /^([BEeQ]) (\d+) ([=+]) ?(.*)$/.exec(line)
    if (!m) return
    const [, kind, idText, flag, name] = m as unknown as [string, string, string, string, string]
    const id = Number(idText)
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
          this.attribution.exit(totals, listing!)
      }
    } catch (error) {
      // One unreadable point would misattribute every later block: the figures stop here.
      this.stopped = true
      this.failures.push(`stopped at a test-case boundary (${kind} ${name}): ${(error as Error).message}`)
    }
  }
}

import { readFile, unlink } from 'node:fs/promises'
import { constants as osConstants } from 'node:os'
import { Classification, emptyGroups, HeapModel, summarize, type BlockGroups, type ClassifiedBlock } from '../model/heap.js'
import { kindOfScanState } from '../model/leak-scan.js'
import { LEAK_KINDS } from '../model/types.js'
import { allocatorCode, blockAt, columnsOfTest, type BlockColumns } from '../model/block-table.js'
import { describeError, type AddressStory, type ObservedError } from '../model/memory-errors.js'
import { observedStack, StackTallies } from '../model/observed-objects.js'
import type { StackAmount } from '../model/peaks.js'
import { applySuppressions, type Suppression } from '../model/suppressions.js'
import type { Frame, RunJson, TestCaseSummary } from '../model/types.js'
import { sourcePath } from './frames.js'
import { ChunkedFile, writeMemdump } from './memdump.js'
import { memoryImage, type DumpedThread, type FileMapping } from './memory-image.js'
import { elfDataSymbolAt } from './valgrind/elf-symbols.js'

/** A loaded object's code range, as an observer reported it for symbolizing after the run. */
export interface LoadedObject {
  lo: number
  hi: number
  /** What its addresses are relocated by: a return address minus this is an address in the file. */
  bias: number
  /** The object's path as the dynamic linker knows it; '' for the program itself. */
  path: string
}

/** The items of `items` that `keep` keeps, as they are read. */
function* filtered<T>(items: Iterable<T>, keep: (item: T) => boolean): Iterable<T> {
  for (const item of items) if (keep(item)) yield item
}

/**
 * The space-separated numbers from `at` to `end` of `buffer`, into `out`: field i in hex where bit
 * min(i, 31) of `hex` is set, else decimal, 13 digits at most (below 2^53: exact as a double).
 * false for anything else (an empty field, another character): the line is then read as text.
 */
function numberFields(buffer: Buffer, at: number, end: number, hex: number, out: number[]): boolean {
  out.length = 0
  let value = 0
  let digits = 0
  let radix = hex & 1 ? 16 : 10
  for (let i = at; i <= end; i++) {
    const c = i < end ? buffer[i]! : 0x20
    if (c === 0x20) {
      if (digits === 0) return false
      out.push(value)
      value = 0
      digits = 0
      radix = (hex >>> Math.min(out.length, 31)) & 1 ? 16 : 10
      continue
    }
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1
    if (digit < 0 || digit >= radix || digits === 13) return false
    value = value * radix + digit
    digits++
  }
  return true
}

/** How the observed program ended, as the observer reported it. */
export interface StreamEnding {
  exitCode: number | null
  signal: string | null
}

interface Dump {
  point: string
  file: string
  /** The image holds the running test case's own blocks alone (a K line). */
  own?: boolean
  mappings: { start: number; end: number; offset: number; name: string; guarded: boolean; perms: string }[]
  files: FileMapping[]
  threads: DumpedThread[]
}

/** The bytes of one block in a batch (an L line's). */
const BATCH_RECORD = 32
/** The bytes of one block in a verdict (a V line's). */
const VERDICT_RECORD = 16
/** The bytes of one group of blocks (a U line's). */
const GROUP_RECORD = 32
const REACHABLE_CODE = LEAK_KINDS.indexOf('reachable')
/** The lines memdump.txt lists (allocations, reallocations, frees, test begins and ends), by first byte: consume() keeps them raw. */
const RAW_EVENTS = new Set([...'ARFBEe'].map((c) => c.charCodeAt(0)))

/** A verdict (a V line's): the kinds of the blocks that are not reachable. */
interface Verdict {
  point: string
  /**
   * The observer judged the test case's own blocks by themselves (V ... own): its records are
   * every one of them, collected here with their kinds (`codes` is then unused).
   */
  own?: ClassifiedBlock[]
  /** Every live block's kind, as its index in LEAK_KINDS, by row of `columns`. */
  codes: Uint8Array
  columns: BlockColumns
}

/** Binary records that follow a line (an L, U or V line's), read as they come. */
interface Records {
  /** The bytes of one. */
  size: number
  /** How many are still to come. */
  left: number
  /** What they are, for a stream that ends among them. */
  what: string
  read(buffer: Buffer, at: number, count: number): void
  /** After the last one. */
  done?(): void
}

function signalName(n: number): string {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === n) return name
  return `signal ${n}`
}

/** The story of a Z line's address (its fields after the address). */
function addressStory(f: string[], addr: number): AddressStory {
  switch (f[0]) {
    case 'data': {
      // the object is still on disk while the run goes on: its symbol tables name the variable
      const symbol = elfDataSymbolAt(f.slice(2).join(' '), addr - parseInt(f[1]!, 16))
      return symbol ? { kind: 'data', symbol: symbol.name, offset: symbol.offset } : { kind: 'none' }
    }
    case 'freed':
      return { kind: 'freed', base: parseInt(f[1]!, 16), size: Number(f[2]), freeStack: Number(f[3]), allocStack: Number(f[4]) }
    case 'alloc':
      return { kind: 'alloc', base: parseInt(f[1]!, 16), size: Number(f[2]), allocStack: Number(f[3]) }
    case 'stack':
      return { kind: 'stack', thread: Number(f[1]), frame: Number(f[2]), entryStack: Number(f[3]) }
    default:
      return { kind: 'none' }
  }
}

/**
 * The capture protocol, debugger-agnostic: an observer inside or beside the program (GDB's
 * Python script, or any other) writes one line per record; this turns the lines into the heap
 * model and, at the end, the run. The lines (numbers in hex where they are addresses):
 *
 *   S id pc...                 a new stack (raw return addresses), innermost first
 *   A tid addr size sid [new]  an allocation (new: made by that operator new, 1 for the first of
 *                              NEW_OPERATORS; 9: by realloc; absent for the rest of the malloc family)
 *   R tid old new size sid     a realloc
 *   F tid addr                 a free of a non-NULL pointer
 *   Z kind tid sid addr story  a memory error (invalid-free, mismatched-free) of the call at stack
 *                              sid, given addr; it counts nothing (the counts come as N lines). story:
 *                                freed BASE SIZE FREE_SID ALLOC_SID   inside a recently freed block
 *                                alloc BASE SIZE ALLOC_SID            inside a live block
 *                                stack THREAD FRAME ENTRY_SID         on thread THREAD's stack (1: the
 *                                                                     first), in caller FRAME's frame;
 *                                                                     its function's entry (+1) is
 *                                                                     ENTRY_SID's one frame
 *                                data BIAS PATH                       in an object's data
 *                                none                                 nowhere memcheck can name
 *   L count from to            a batch of `count` allocations, each a binary record of 32 bytes right
 *                              after this line (little-endian): address, size, seq (u64 each; seq in
 *                              [from, to): the blocks' allocation order, which the records are not
 *                              in), stack id, new as in A lines (u32 each)
 *   N allocs frees bytes       blocks counted but not sent: each was allocated and freed between
 *                              two test-case boundaries, so only the counts matter (preload)
 *   n sid allocs frees bytes   the same, for the blocks of one stack (when only some objects are
 *                              observed: the host keeps the stacks through them)
 *   B tid name                 a test case began
 *   E tid name                 a test case ended; the memory image at its end follows
 *   e tid name                 a test case ended with no image (left by longjmp or an exception)
 *   D point file ... d         a memory image (point: test, exit, crash, timeout, exec); its bytes in
 *                              `file`, removed once read:
 *     W start end perms off name   a writable mapping (perms ending in g: above a guard page), or a
 *                                  file's data made read-only after its relocations (r--p: its
 *                                  vtables, for memcheck's multipleinheritance heuristic; no root)
 *     w start end perms off name   a file's other mapping, not in `file`: its bytes are the file's
 *                                  from offset `off` (hex); for the same heuristic
 *     T tid sp reg...              a thread's registers: rax rbx rcx rdx rsi rdi rbp r8..r15
 *     C tid [reg...]               that thread stands at a call: its caller-saved registers are
 *                                  dead but for those named (rdi: an argument; rax: a result)
 *     K                            (at a test end) nothing outside the running test case's own
 *                                  live blocks points into them: the W lines are those blocks'
 *                                  bytes alone, to be classified among themselves
 *   U count from to            at the end, before its V line: the blocks the model was never sent,
 *                              as `count` binary records of 32 bytes (little-endian), each the sum
 *                              of the blocks of one stack, allocator and kind: stack id (u32), new
 *                              as in A lines (u16), scan state as in V records (u16), blocks,
 *                              bytes, and the seq of the first of them (u64 each; seqs as in L)
 *   V point count              the observer scanned the heap itself (point as for D): `count` binary
 *                              records of 16 bytes follow (little-endian u64 each), the address of a
 *                              block that is not reachable and its scan state (0 definite, 1
 *                              possible, 3 indirect); every other live block is reachable. At a test
 *                              end, the records are the running test case's blocks alone; `own`
 *                              after the count: they were judged by themselves (the words that
 *                              point into them), and the records are every one of the test
 *                              case's live blocks, reachable ones (state 2) too
 *   Y pc fn|file|line|object   the symbol of a return address
 *   M lo hi bias path          a loaded object's code, for an observer that leaves symbols to the
 *                              host (path empty: the program itself)
 *   H version observer [peaks] the observer is in place; `peaks`: it keeps the peaks and the heap
 *                              series itself (P, Q and G lines follow), and the model need not
 *   O bias path                only allocations made by this object are observed (objects mode):
 *                              the rest of the heap is the program's own memory, a root
 *   X exit code / X signal N   how the program ended
 *   P bytes heapBytes          the running test case's peaks, kept by the observer (preload: the model
 *                              never sees the blocks freed between boundaries): its own blocks' most
 *                              live bytes and the whole heap's while it ran; before its end
 *   Q bytes                    the run's peak (the whole heap's most live bytes), before the exit image
 *   p sid bytes blocks         after P or Q: the blocks of one stack live at that peak
 *   G width x y x y...         the observer's heap series: y live bytes from event x (see model/peaks.ts)
 *   I reason                   the observer could not see the whole run (an exec, say): the run fails
 *   ! message                  the observer failed here
 */
export class EventStream {
  readonly model = new HeapModel()
  readonly failures: string[] = []
  /** Why the observer could not see the whole run (I lines, or the backend's own finding). */
  readonly incomplete: string[] = []
  ending: StreamEnding | undefined
  /** The observer said it is in place (an H line). */
  started = false
  /** Images taken at the end of the process (exit, crash, timeout). */
  finalImages = 0
  /**
   * Images taken at test ends, how many of them held the test case's own blocks alone (K), the
   * test ends the observer scanned itself (V), and how many of those it judged by the test case's
   * own blocks alone (V ... own).
   */
  readonly testImages = { all: 0, own: 0, scanned: 0, ownScanned: 0 }
  /** How many reads brought the lines (each wakes the host: the observer writes in few, big pieces). */
  reads = 0
  /** How many blocks came in batches (the blocks the model learnt of at boundaries). */
  batchedBlocks = 0
  /** The end of the process was scanned by the observer itself (a V line), not sent as an image. */
  finalScanned = false
  /** Loaded objects reported with M lines. */
  readonly objects: LoadedObject[] = []
  private readonly objectKeys = new Set<string>()
  private readonly symbols = new Map<number, Frame>()
  /** Memory errors in the order they happened. */
  readonly errors: ObservedError[] = []
  private atExit: Classification | undefined
  private dump: Dump | undefined
  /** The binary records being read (a batch of blocks, groups of blocks, a verdict). */
  private records: Records | undefined
  /** The groups of blocks read (U lines), for the verdict that follows. */
  private groups: BlockGroups | undefined
  /** Live blocks held only as groups' sums. */
  private readonly grouped = { bytes: 0, blocks: 0 }
  private pendingEnd: string | undefined
  /** The peak the `p` lines that follow a P or Q line belong to. */
  private peakSites: StackAmount[] | undefined
  /** Only chosen objects' allocations are observed: untracked heap memory then counts as roots. */
  private partial = false
  /**
   * Every block is observed but only these objects' are the run's figures (a Node addon's, under
   * the preload backend): counts by stack, kept at the end for the stacks through one of them.
   */
  private observed: { patterns: RegExp[]; tallies: StackTallies } | undefined

  /** The run's figures are those of blocks allocated with a frame of one of these objects on the stack. */
  observeOnly(patterns: RegExp[]): void {
    this.observed = { patterns, tallies: new StackTallies() }
  }

  private get tallies(): StackTallies | undefined {
    return this.observed?.tallies
  }

  private tallyFree(addr: number): void {
    if (!this.observed) return
    const stack = this.model.live.stackOf(addr)
    if (stack >= 0) this.observed.tallies.add(this.model.runningTest, stack, 0, 1, 0)
  }
  private readonly memdump: ChunkedFile | undefined

  /** `memdumpRaw`: where to keep the raw events for memdump.txt, when one is wanted. */
  constructor(
    private readonly cwd: string,
    private readonly memdumpRaw?: string,
  ) {
    this.memdump = memdumpRaw ? new ChunkedFile(memdumpRaw) : undefined
  }

  /**
   * Reads every line of `input` into the model, in order, and the binary records of each batch
   * (an L line's) as they come: a batch of millions of blocks is never held whole.
   */
  async consume(input: NodeJS.ReadableStream): Promise<void> {
    let rest: Buffer | undefined
    for await (const chunk of input as AsyncIterable<Buffer>) {
      this.reads++
      const buffer: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk
      let at = 0
      while (at < buffer.length) {
        const records = this.records
        if (records) {
          const count = Math.min(records.left, Math.floor((buffer.length - at) / records.size))
          if (count === 0) break
          records.read(buffer, at, count)
          at += count * records.size
          records.left -= count
          if (records.left === 0) {
            this.records = undefined
            records.done?.()
          }
          continue
        }
        const newline = buffer.indexOf(10, at)
        if (newline < 0) break
        const end = newline > at && buffer[newline - 1] === 13 ? newline - 1 : newline
        if (buffer[at] === 0x53 /* S */ && buffer[at + 1] === 0x20) this.stackLine(buffer, at + 2, end)
        else if (buffer[at] === 0x70 /* p */ && buffer[at + 1] === 0x20) this.peakLine(buffer, at + 2, end)
        else if (buffer[at] === 0x41 /* A */ && buffer[at + 1] === 0x20) {
          this.allocLine(buffer, at + 2, end)
          this.memdump?.writeLine(buffer, at, end)
        } else {
          // most lines are read at once: only an image's end waits (a microtask a line cost 100,000 stacks ~0.1 s)
          const pending = this.line(buffer.toString('utf8', at, end))
          if (this.memdump && RAW_EVENTS.has(buffer[at]!)) this.memdump.writeLine(buffer, at, end)
          if (pending) await pending
        }
        at = newline + 1
      }
      rest = at < buffer.length ? buffer.subarray(at) : undefined
    }
    // a last line without its newline still counts, as readline's would
    if (rest && !this.records) {
      const pending = this.line(rest.toString('utf8'))
      if (this.memdump && RAW_EVENTS.has(rest[0]!)) this.memdump.writeLine(rest, 0, rest.length)
      await pending
    }
    if (this.records) this.failures.push(`the observer's stream ended inside ${this.records.what} (${this.records.left} of them missing)`)
    this.memdump?.close()
  }

  /** `count` records of a batch, from `buffer` at `at`, numbered from `base` (see the L line). */
  private batchBlocks(buffer: Buffer, at: number, count: number, batch: { from: number; base: number }): void {
    this.batchedBlocks += count
    const model = this.model
    const tallies = this.tallies
    for (let i = 0, o = at; i < count; i++, o += BATCH_RECORD) {
      const addr = buffer.readUInt32LE(o + 4) * 0x100000000 + buffer.readUInt32LE(o)
      const size = buffer.readUInt32LE(o + 12) * 0x100000000 + buffer.readUInt32LE(o + 8)
      const seq = buffer.readUInt32LE(o + 20) * 0x100000000 + buffer.readUInt32LE(o + 16)
      const stack = buffer.readUInt32LE(o + 24)
      const allocator = buffer.readUInt32LE(o + 28)
      tallies?.add(model.runningTest, stack, 1, 0, size)
      model.allocate(addr, size, stack, allocatorCode(allocator), batch.base + (seq - batch.from))
      this.memdump?.write(`A 0 ${addr.toString(16)} ${size} ${stack}${allocator ? ` ${allocator}` : ''}\n`)
    }
  }

  /** `count` records of a verdict, from `buffer` at `at` (see the V line). */
  private verdictBlocks(buffer: Buffer, at: number, count: number, verdict: Verdict): void {
    const live = this.model.live
    for (let i = 0, o = at; i < count; i++, o += VERDICT_RECORD) {
      const addr = buffer.readUInt32LE(o + 4) * 0x100000000 + buffer.readUInt32LE(o)
      const code = kindOfScanState(buffer.readUInt32LE(o + 8))
      const row = live.rowOf(addr)
      if (row < 0 || code < 0) {
        this.failures.push(`the observer's scan named a block the model does not know (0x${addr.toString(16)}, state ${buffer.readUInt32LE(o + 8)})`)
        continue
      }
      if (verdict.own) verdict.own.push({ block: blockAt(verdict.columns, row), kind: LEAK_KINDS[code]! })
      else verdict.codes[row] = code
    }
  }

  /** `count` records of groups of blocks, from `buffer` at `at`, numbered from `base` (see the U line). */
  private groupRecords(buffer: Buffer, at: number, count: number, grouping: { from: number; base: number }): void {
    const groups = (this.groups ??= emptyGroups())
    for (let i = 0, o = at; i < count; i++, o += GROUP_RECORD) {
      const allocator = buffer.readUInt16LE(o + 4)
      const code = kindOfScanState(buffer.readUInt16LE(o + 6))
      const blocks = buffer.readUInt32LE(o + 12) * 0x100000000 + buffer.readUInt32LE(o + 8)
      const bytes = buffer.readUInt32LE(o + 20) * 0x100000000 + buffer.readUInt32LE(o + 16)
      const seq = buffer.readUInt32LE(o + 28) * 0x100000000 + buffer.readUInt32LE(o + 24)
      groups.stacks.push(buffer.readUInt32LE(o))
      groups.codes.push(code < 0 ? REACHABLE_CODE : code)
      groups.bytes.push(bytes)
      groups.blocks.push(blocks)
      groups.seqs.push(grouping.base + (seq - grouping.from))
      groups.allocators.push(allocatorCode(allocator))
      // counted as allocations of the test case running, as an N line's
      this.model.tally(blocks, 0, bytes)
      groups.tests.push(this.model.runningTest)
      this.grouped.bytes += bytes
      this.grouped.blocks += blocks
    }
  }

  /** Images and verdicts alike: what a point of the run (a test end, the exit) counts. */
  private pointReached(point: string, own = false, scanned = false): { final: boolean; ending: string | undefined } {
    // At the end of the process memcheck scans no registers: its threads are gone.
    const final = point === 'exit' || point === 'crash' || point === 'timeout' || point === 'exec'
    if (final) this.finalImages++
    const ending = point === 'test' ? this.pendingEnd : undefined
    if (point === 'test') {
      if (scanned) this.testImages.scanned++
      else this.testImages.all++
      if (own && scanned) this.testImages.ownScanned++
      else if (own) this.testImages.own++
      this.pendingEnd = undefined
    }
    return { final, ending }
  }

  private finishVerdict(v: Verdict): void {
    const { final, ending } = this.pointReached(v.point, v.own !== undefined, true)
    if (final) this.finalScanned = true
    if (v.own) {
      if (ending !== undefined) this.model.endTest(ending, v.own)
      return
    }
    const classification = new Classification(v.columns, v.codes, final ? this.groups : undefined)
    if (final) this.atExit = classification
    if (ending !== undefined) this.model.endTest(ending, classification)
  }

  /**
   * An S line's fields (`id pc...`, from `at` to `end` of `buffer`), read from its bytes: a run of
   * 100,000 sites sends as many, and a string and a split each cost more than the numbers.
   * Anything but the interposer's form reads as `line` would.
   */
  private stackLine(buffer: Buffer, at: number, end: number): void {
    const fields = this.fields
    if (!numberFields(buffer, at, end, ~1, fields)) return this.otherLine(buffer, at - 2, end)
    this.model.defineStack(fields[0]!, fields.slice(1))
    this.stackSeen()
  }

  /** Called once, at the first stack the stream defines (the preload backend starts its symbolizer then). */
  onFirstStack: (() => void) | undefined

  private stackSeen(): void {
    const first = this.onFirstStack
    if (!first) return
    this.onFirstStack = undefined
    first()
  }

  /** The fields of the interposer's A lines, read into the model from their bytes (millions, with memdump.txt). */
  private readonly fields: number[] = []

  /** An A line (`tid addr size stack [allocator]`, from `at` to `end` of `buffer`), read as stackLine reads an S line. */
  private allocLine(buffer: Buffer, at: number, end: number): void {
    const f = this.fields
    if (!numberFields(buffer, at, end, 0b10, f) || f.length < 4 || f.length > 5) return this.otherLine(buffer, at - 2, end)
    const model = this.model
    this.tallies?.add(model.runningTest, f[3]!, 1, 0, f[2]!)
    model.allocate(f[1]!, f[2]!, f[3]!, f.length === 5 ? allocatorCode(f[4]!) : 0)
  }

  /** A p line (`stack bytes blocks`: one of a peak's sites, 100,000 of them with as many sites), read as stackLine reads an S line. */
  private peakLine(buffer: Buffer, at: number, end: number): void {
    const f = this.fields
    if (!numberFields(buffer, at, end, 0, f) || f.length !== 3) return this.otherLine(buffer, at - 2, end)
    this.peakSites?.push({ stack: f[0]!, bytes: f[1]!, blocks: f[2]! })
  }

  /** A line in another form than the interposer's, read as text. */
  private otherLine(buffer: Buffer, at: number, end: number): void {
    this.line(buffer.toString('utf8', at, end))
  }

  /** Reads one line into the model; a promise only where the line must be waited for (an image's end). */
  line(line: string): Promise<void> | undefined {
    const model = this.model
    if (line[0] === 'F') {
      // the commonest line (every free of a block the model knows), read without splitting it
      const addr = parseInt(line.slice(line.indexOf(' ', 2) + 1), 16)
      this.tallyFree(addr)
      model.free(addr)
      return
    }
    const f = line.slice(2).split(' ')
    const rest = (from: number): string => f.slice(from).join(' ')
    switch (line[0]) {
      case 'A':
        this.tallies?.add(model.runningTest, Number(f[3]), 1, 0, Number(f[2]))
        model.allocate(parseInt(f[1]!, 16), Number(f[2]), Number(f[3]), f[4] ? allocatorCode(Number(f[4])) : 0)
        break
      case 'L': {
        const [count, from, to] = [Number(f[0]), Number(f[1]), Number(f[2])]
        if (count === 0) return
        const batch = { from, base: model.reserveBatch(count, to - from) }
        this.records = { size: BATCH_RECORD, left: count, what: 'a batch of blocks', read: (buffer, at, n) => this.batchBlocks(buffer, at, n, batch) }
        return
      }
      case 'N':
        model.tally(Number(f[0]), Number(f[1]), Number(f[2]))
        return
      case 'n':
        this.tallies?.add(model.runningTest, Number(f[0]), Number(f[1]), Number(f[2]), Number(f[3]))
        model.tally(Number(f[1]), Number(f[2]), Number(f[3]))
        return
      case 'R': {
        const [old, addr, size, stack] = [parseInt(f[1]!, 16), parseInt(f[2]!, 16), Number(f[3]), Number(f[4])]
        if (addr !== 0 || (size === 0 && old !== 0)) this.tallyFree(old)
        if (addr !== 0) this.tallies?.add(model.runningTest, stack, 1, 0, size)
        model.reallocate(old, addr, size, stack)
        break
      }
      case 'Z': {
        const addr = parseInt(f[3]!, 16)
        this.errors.push({ kind: f[0]!, test: model.runningTest, stack: Number(f[2]), addr, story: addressStory(f.slice(4), addr) })
        return
      }
      case 'S': {
        const pcs = new Array<number>(f.length - 1)
        for (let i = 1; i < f.length; i++) pcs[i - 1] = parseInt(f[i]!, 16)
        model.defineStack(Number(f[0]), pcs)
        this.stackSeen()
        return
      }
      case 'B':
        model.beginTest(rest(1))
        break
      case 'E':
        this.pendingEnd = rest(1)
        break
      case 'e':
        model.endTest(rest(1), undefined)
        break
      case 'D':
        this.dump = { point: f[0]!, file: rest(1), mappings: [], files: [], threads: [] }
        return
      case 'U': {
        const [count, from, to] = [Number(f[0]), Number(f[1]), Number(f[2])]
        this.groups ??= emptyGroups()
        if (count === 0) return
        const grouping = { from, base: model.reserveBatch(0, to - from) }
        this.records = { size: GROUP_RECORD, left: count, what: 'its groups of blocks', read: (buffer, at, n) => this.groupRecords(buffer, at, n, grouping) }
        return
      }
      case 'V': {
        // a test end's kinds are taken as its records arrive, before the table changes; the exit's
        // are kept for the run, and the program may go on past an exec that failed
        const columns = f[0] === 'test' ? this.model.live.view() : this.model.live.columns()
        const own = f[2] === 'own'
        const verdict: Verdict = own
          ? { point: f[0]!, own: [], codes: new Uint8Array(0), columns }
          : { point: f[0]!, codes: new Uint8Array(columns.count).fill(REACHABLE_CODE), columns }
        const count = Number(f[1])
        if (count === 0) this.finishVerdict(verdict)
        else {
          this.records = {
            size: VERDICT_RECORD,
            left: count,
            what: "its scan's records of blocks not reachable",
            read: (buffer, at, n) => this.verdictBlocks(buffer, at, n, verdict),
            done: () => this.finishVerdict(verdict),
          }
        }
        return
      }
      case 'W':
        this.dump?.mappings.push({ start: parseInt(f[0]!, 16), end: parseInt(f[1]!, 16), guarded: f[2]!.endsWith('g'), perms: f[2]!.slice(0, 4), offset: Number(f[3]), name: rest(4) })
        return
      case 'w':
        this.dump?.files.push({ start: parseInt(f[0]!, 16), end: parseInt(f[1]!, 16), perms: f[2]!, offset: parseInt(f[3]!, 16), name: rest(4) })
        return
      case 'T':
        this.dump?.threads.push({ tid: Number(f[0]), sp: parseInt(f[1]!, 16), registers: f.slice(2).map((r) => parseInt(r, 16)) })
        return
      case 'K':
        if (this.dump) this.dump.own = true
        return
      case 'C': {
        const thread = this.dump?.threads.find((t) => t.tid === Number(f[0]))
        if (thread) thread.atCall = f.slice(1)
        return
      }
      case 'd': {
        const dump = this.dump
        this.dump = undefined
        return dump && this.finishDump(dump)
      }
      case 'Y': {
        const [fn, file, lineNo, object] = rest(1).split('|')
        this.resolved({ pc: parseInt(f[0]!, 16), fn: fn || null, file: file || null, line: lineNo ? Number(lineNo) : null, object: object || '' })
        return
      }
      case 'O':
        this.partial = true
        return
      case 'M': {
        // an observer may list the objects again as more are loaded: each is kept once
        const object = { lo: parseInt(f[0]!, 16), hi: parseInt(f[1]!, 16), bias: parseInt(f[2]!, 16), path: rest(3) }
        const key = `${object.lo} ${object.hi} ${object.path}`
        if (!this.objectKeys.has(key)) {
          this.objectKeys.add(key)
          this.objects.push(object)
        }
        return
      }
      case 'H':
        this.started = true
        if (f[2] === 'peaks') model.peaksObserved()
        return
      case 'X':
        this.ending = f[0] === 'exit' ? { exitCode: Number(f[1]), signal: null } : { exitCode: null, signal: /^\d+$/.test(f[1]!) ? signalName(Number(f[1])) : f[1]! }
        return
      case '!':
        this.failures.push(line.slice(2))
        return
      case 'I':
        this.incomplete.push(line.slice(2))
        return
      case 'P':
        this.peakSites = model.observedTestPeak(Number(f[0]), Number(f[1]))
        return
      case 'Q':
        this.peakSites = model.observedRunPeak(Number(f[0]))
        return
      case 'p':
        this.peakSites?.push({ stack: Number(f[0]), bytes: Number(f[1]), blocks: Number(f[2]) })
        return
      case 'G': {
        const points: [number, number][] = []
        for (let i = 1; i + 1 < f.length; i += 2) points.push([Number(f[i]), Number(f[i + 1])])
        model.observedHeapSeries(points)
        return
      }
      default:
        return undefined
    }
    return undefined
  }

  private async finishDump(d: Dump): Promise<void> {
    const { final, ending } = this.pointReached(d.point, d.own)
    const columns = this.model.live.columns()
    // Only some objects' blocks count: a test case that left none of theirs live needs no scan
    // at its end (a Node script's test cases leave V8's and Node's own blocks live at each), so
    // its image is not even read.
    const scanned = final || (ending !== undefined && this.leftObservedBlocks(columns))
    const data = scanned ? await readFile(d.file) : undefined
    await unlink(d.file)
    const regions = data && d.mappings.map((m) => ({ ...m, bytes: data.subarray(m.offset, m.offset + (m.end - m.start)) }))
    if (regions && d.own && ending !== undefined) {
      // their kinds among themselves: no roots, and no other block to weigh
      this.model.endTest(ending, { heap: regions, roots: [], registers: [] }, columnsOfTest(columns, this.model.runningTest))
      return
    }
    const image = regions && memoryImage(regions, d.threads, columns, !final, this.partial, d.files)
    if (final) this.atExit = this.model.classify(image!, columns)
    if (ending !== undefined) this.model.endTest(ending, image, columns)
  }

  /** Whether the running test case has a block of the observed objects live (always, when every object is). */
  private leftObservedBlocks(columns: BlockColumns): boolean {
    const observed = this.observedStacks()
    if (!observed) return true
    const test = this.model.runningTest
    for (let i = 0; i < columns.count; i++) if (columns.tests[i] === test && observed(columns.stacks[i]!)) return true
    return false
  }

  /**
   * Whether a stack is one of the observed objects' (memoized), when only some are observed. The
   * answers hold until another object is loaded: the report asks for every stack three times (its
   * symbols, its figures, its counts), each of Node's thousand stacks walked frame by frame.
   */
  private observedStacks(): ((stack: number) => boolean) | undefined {
    if (!this.observed) return undefined
    if (this.observedMemo?.objects !== this.objects.length) {
      const through = observedStack(this.objects, this.observed.patterns)
      const known: boolean[] = []
      const answer = (stack: number): boolean => (known[stack] ??= through(this.model.stack(stack)))
      this.observedMemo = { objects: this.objects.length, answer }
    }
    return this.observedMemo.answer
  }

  private observedMemo: { objects: number; answer: (stack: number) => boolean } | undefined

  /**
   * The return addresses the run can show, to symbolize: every stack's; with only some objects
   * observed, those of the stacks through them and of the memory errors (a Node program makes
   * thousands of stacks of its own that no figure of the run names).
   */
  shownPcs(): Set<number> {
    const observed = this.observedStacks()
    if (!observed) return this.model.allPcs()
    const shown = new Set<number>()
    for (const error of this.errors) {
      shown.add(error.stack)
      const story = error.story
      if (story.kind === 'freed') shown.add(story.freeStack).add(story.allocStack)
      else if (story.kind === 'alloc') shown.add(story.allocStack)
      else if (story.kind === 'stack') shown.add(story.entryStack)
    }
    return this.model.allPcs((stack) => shown.has(stack) || observed(stack))
  }

  /** A return address's symbol, as a Y line carries it (for a host that symbolizes itself, without the line). */
  resolved(symbol: { pc: number; fn: string | null; file: string | null; line: number | null; object: string }): void {
    let file: string | null = null
    if (symbol.file) {
      // the same few files name 100,000 frames: each path is made relative once
      file = this.sourcePaths.get(symbol.file) ?? null
      if (file === null) this.sourcePaths.set(symbol.file, (file = sourcePath(null, symbol.file, this.cwd)))
    }
    this.symbols.set(symbol.pc, { fn: symbol.fn || null, file, line: symbol.line, object: symbol.object || null, pc: `0x${symbol.pc.toString(16)}` })
  }

  private readonly sourcePaths = new Map<string, string>()

  /** A frame for a return address; unresolved ones keep their address. */
  readonly symbol = (pc: number): Frame => this.symbols.get(pc) ?? { fn: null, file: null, line: null, object: null, pc: `0x${pc.toString(16)}` }

  /**
   * The run as the stream described it. `timedOut`: the program was stopped before its end.
   * `suppressions` apply to the loss records at exit and to each test case's; with
   * `genSuppressions` every kept record carries its ready-to-paste suppression.
   */
  run(
    backend: string,
    command: string[],
    timedOut: { afterMs: number; signal: string } | undefined,
    { suppressions = [], genSuppressions = false }: { suppressions?: readonly Suppression[]; genSuppressions?: boolean } = {},
  ): RunJson {
    const model = this.model
    const warnings = [...model.warnings, ...this.failures]
    if (timedOut) {
      warnings.push(
        `the program was stopped after ${timedOut.afterMs / 1000} s; ` +
          (this.atExit ? 'its leaks are those of that moment' : 'its leaks were not classified (the debugger did not answer in time)'),
      )
    }
    // With only some objects observed, the scan judged the whole heap; the figures are their blocks'.
    const observed = this.observedStacks()
    const keep = <T extends ClassifiedBlock>(blocks: Iterable<T>): Iterable<T> => (observed ? filtered(blocks, ({ block }) => observed(block.stack)) : blocks)
    const exit = applySuppressions(this.atExit ? model.lossSites(this.atExit, this.symbol, observed) : [], suppressions, genSuppressions)
    const leaks = exit.kept
    // Symbols came last: each test case's records are built now, from the blocks its end and the exit left it.
    const verdicts = model.testVerdicts(this.atExit)
    const counted = observed ? this.observed!.tallies.totals(observed) : undefined
    // With only some objects observed the heap held every object's blocks: no peak is theirs alone.
    const peaks = observed ? undefined : model.peaks()
    const tests = model.testSummaries().map((summary, i): TestCaseSummary => {
      const own = applySuppressions(model.lossSites(keep(verdicts[i]!), this.symbol), suppressions, genSuppressions)
      const totals = counted?.tests.get(i) ?? (counted ? { allocations: 0, frees: 0, bytesAllocated: 0 } : undefined)
      const peak = peaks?.tests[i]
      return {
        ...summary,
        ...totals,
        leakSummary: summarize(own.kept),
        leaks: own.kept,
        suppressed: own.suppressed,
        ...(peak ? { peak: { bytes: peak.bytes, heapBytes: peak.heapBytes, sites: model.peakSites(peak.sites, this.symbol) } } : {}),
      }
    })
    const live = model.live.columns()
    const inUse = { ...this.grouped }
    for (let i = 0; i < live.count; i++) {
      if (observed && !observed(live.stacks[i]!)) continue
      inUse.bytes += live.sizes[i]!
      inUse.blocks++
    }
    return {
      schema: 1,
      backend,
      program: {
        command,
        exitCode: this.ending?.exitCode ?? null,
        signal: this.ending?.signal ?? (timedOut ? timedOut.signal : null),
        ...(timedOut ? { timedOut: true } : {}),
      },
      totals: counted ? counted.run : { ...model.totals },
      inUseAtExit: inUse,
      leakSummary: summarize(leaks),
      suppressed: exit.suppressed,
      leaks,
      tests,
      errors: this.errors.map((e) => describeError(e, model.tests[e.test]?.name ?? null, (id) => model.stack(id).map(this.symbol))),
      ...(peaks
        ? {
            peak: { bytes: peaks.run.bytes, sites: model.peakSites(peaks.run.sites, this.symbol) },
            heapSeries: { points: peaks.series.points, spans: peaks.series.spans.map((span, test) => ({ test, ...span })) },
          }
        : {}),
      ...(this.incomplete.length > 0 ? { incomplete: this.incomplete.join('; ') } : {}),
      ...(warnings.length + this.incomplete.length > 0 ? { warnings: [...this.incomplete, ...warnings] } : {}),
    } satisfies RunJson
  }

  /** memdump.txt: every event with its stack, resolved, in the order the program made them. */
  writeMemdump(target: string): void {
    if (this.memdumpRaw) writeMemdump(this.memdumpRaw, target, (id) => this.model.stack(id).map(this.symbol))
  }
}

import { closeSync, openSync, readSync } from 'node:fs'
import { addressOrder, readWord, scanColumns, type MemoryImage, type MemoryRegion, type ScanBlock, type ScanColumns } from '../model/leak-scan.js'

/** A writable mapping as the GDB script dumped it. */
export interface DumpedMapping {
  start: number
  end: number
  name: string
  bytes: Uint8Array
  /** Right above a PROT_NONE guard page: how glibc lays out a thread's stack. */
  guarded?: boolean
  /** Its permissions as the maps show them (rw-p when not given); a file's data made read-only after its relocations is dumped for its vtables, and is no root. */
  perms?: string
}

/** A file's mapping the image holds no bytes of (its code, its read-only data): the bytes are the file's, from `offset`. */
export interface FileMapping {
  start: number
  end: number
  perms: string
  offset: number
  name: string
}

/** A thread's stack pointer and general registers at the dump. */
export interface DumpedThread {
  tid: number
  sp: number
  /** rax rbx rcx rdx rsi rdi rbp r8 .. r15 */
  registers: number[]
  /**
   * Stopped at a function's entry or return: the registers a call clobbers hold nothing live,
   * but for those named here (an argument, a return value).
   */
  atCall?: string[]
}

/** The order of `registers`. */
const REGISTER_NAMES = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15']

/** rbx, rbp, r12-r15: the registers a call preserves (SysV x86-64). */
const CALLEE_SAVED = ['rbx', 'rbp', 'r12', 'r13', 'r14', 'r15']

/** The registers of a thread that can hold a live pointer. */
function liveRegisters(t: DumpedThread): number[] {
  if (!t.atCall) return t.registers
  const live = new Set([...CALLEE_SAVED, ...t.atCall])
  return t.registers.filter((_, i) => live.has(REGISTER_NAMES[i]!))
}

/** Bytes at the top of a thread's stack mapping that hold glibc's struct pthread (2,368 in 2.36). */
const THREAD_DESCRIPTOR = 2432

/** glibc maps each non-main arena's heap at a multiple of HEAP_MAX_SIZE (64 MiB on 64-bit). */
const ARENA_ALIGNMENT = 64 * 1024 * 1024

/**
 * Whether an anonymous mapping no thread runs on is a heap of one of malloc's arenas: at a multiple
 * of 64 MiB, starting with a heap_info (its arena, then its size). A thread's stack lands at such an
 * address too (an arena's aligned mapping leaves aligned holes, and a new thread's stack fills one):
 * read as heap, the blocks only its stack held would read as lost.
 */
function arenaHeap(m: DumpedMapping): boolean {
  if (m.start % ARENA_ALIGNMENT !== 0 || m.bytes.length < 24) return false
  const view = new DataView(m.bytes.buffer, m.bytes.byteOffset, 24)
  const size = view.getBigUint64(16, true)
  return view.getBigUint64(0, true) !== 0n && size > 0n && size <= BigInt(ARENA_ALIGNMENT)
}

/**
 * Decides what of a dump is heap and what is a root, as memcheck sees a process: the heap is
 * malloc's memory ([heap], arena heaps, mmapped chunks); roots are every other writable mapping,
 * each stack only from its thread's stack pointer up (below it is dead), and the registers.
 * At the end of the process memcheck scans no registers (its threads are gone): `withRegisters`
 * is false there.
 */
export function memoryImage(
  mappings: DumpedMapping[],
  threads: DumpedThread[],
  given: ScanBlock[] | ScanColumns,
  withRegisters: boolean,
  partial = false,
  files: FileMapping[] = [],
): MemoryImage {
  const blocks = scanColumns(given)
  const { starts } = addressOrder(blocks)
  const holdsBlock = (m: DumpedMapping): boolean => {
    const lo = firstAtOrAbove(starts, m.start)
    return lo < starts.length && starts[lo]! < m.end
  }
  const heap: MemoryRegion[] = []
  const roots: MemoryRegion[] = []
  const allocatorRoots: MemoryRegion[] = []
  const startOnlyRoots: MemoryRegion[] = []
  for (const m of mappings) {
    if (m.perms !== undefined && !m.perms.startsWith('rw')) continue
    const anonymous = m.name === ''
    const thread = threads.find((t) => t.sp >= m.start && t.sp < m.end)
    const arena = m.name === '[heap]' || (anonymous && !thread && arenaHeap(m))
    const chunks = !arena && !partial && holdsBlock(m) ? mmappedChunks(m, starts) : undefined
    if (chunks) {
      // Roots are memory, not mappings: the kernel merges a mapping the program made itself (a
      // pool's arena) with an adjacent mmapped malloc chunk, and only the chunks are malloc's.
      let from = m.start
      for (const [lo, hi] of chunks) {
        if (lo > from) roots.push({ start: from, bytes: m.bytes.subarray(from - m.start, lo - m.start) })
        heap.push({ start: lo, bytes: m.bytes.subarray(lo - m.start, hi - m.start) })
        from = hi
      }
      if (from < m.end) roots.push({ start: from, bytes: m.bytes.subarray(from - m.start) })
      continue
    }
    if (arena || holdsBlock(m)) {
      heap.push({ start: m.start, bytes: m.bytes })
      // When only some objects' allocations are observed, the program's other blocks live here
      // too, unseen: everything in the heap but the observed blocks is the program's memory. Its
      // freed chunks keep stale words nobody marked dead, so only start pointers count there.
      if (partial) {
        const unseen = withoutRanges(outside(m, starts, blocks), freeChunks(m))
        roots.push(...unseen)
        startOnlyRoots.push(...unseen)
      }
      continue
    }
    // A guarded anonymous mapping no thread runs on is a dead thread's stack that glibc keeps for
    // reuse: memcheck marks a stack dead as it unwinds, so its stale frames are no roots. The
    // thread descriptor at its top (glibc's struct pthread: the DTV, key values) still is.
    const deadStack = !thread && anonymous && m.guarded
    const from = thread ? thread.sp - m.start : deadStack ? Math.max(0, m.end - m.start - THREAD_DESCRIPTOR) : 0
    const region = { start: m.start + from, bytes: m.bytes.subarray(from) }
    roots.push(region)
    if (/\/libc[.-][^/]*\.so/.test(m.name) || /\/libc\.so/.test(m.name)) allocatorRoots.push(region)
  }
  const registers = withRegisters ? threads.flatMap(liveRegisters) : []
  const chunkEnd = (block: ScanBlock): number | undefined => {
    const header = readWord(heap, block.start - 8)
    // bit 1 marks an mmapped chunk, which has no neighbour for the arena to point at
    if (header === undefined || header & 2) return undefined
    return block.start - 16 + (header - (header % 8))
  }
  return { heap, roots, registers, allocatorRoots, startOnlyRoots, chunkEnd, isVtable: vtableTest(mappings, files) }
}

/** The words memcheck reads from a vtable candidate: the first two not null must point at code. */
const VTABLE_WORDS = 21

/**
 * memcheck's test of an address for a vtable, for its multipleinheritance heuristic
 * (mc_leakcheck.c's aligned_ptr_above_page0_is_vtable_addr): it lies in a readable mapping of a
 * file and, of the words from it (at most 21, and not the mapping's last), the first two that are
 * not null point into executable mappings of files; a word pointing anywhere else first says no.
 * The words come from the image (a file's writable or relocated data) or from the file itself.
 * Answers are kept by address.
 */
function vtableTest(mappings: DumpedMapping[], files: FileMapping[]): (addr: number) => boolean {
  interface Place {
    start: number
    end: number
    readable: boolean
    executable: boolean
    bytes?: Uint8Array
    file?: FileMapping
  }
  const places: Place[] = [
    ...mappings.filter((m) => m.name.startsWith('/')).map((m) => ({ start: m.start, end: m.end, readable: true, executable: m.perms?.[2] === 'x', bytes: m.bytes })),
    ...files.map((f) => ({ start: f.start, end: f.end, readable: f.perms[0] === 'r', executable: f.perms[2] === 'x', file: f })),
  ].sort((a, b) => a.start - b.start)
  const placeOf = (addr: number): Place | undefined => {
    let lo = 0
    let hi = places.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const p = places[mid]!
      if (addr < p.start) hi = mid - 1
      else if (addr >= p.end) lo = mid + 1
      else return p
    }
    return undefined
  }
  const read = (place: Place, addr: number, length: number): Uint8Array | undefined => {
    if (place.bytes) return place.bytes.length >= addr - place.start + length ? place.bytes.subarray(addr - place.start, addr - place.start + length) : undefined
    const buffer = new Uint8Array(length)
    let fd: number | undefined
    try {
      fd = openSync(place.file!.name, 'r')
      return readSync(fd, buffer, 0, length, place.file!.offset + addr - place.start) === length ? buffer : undefined
    } catch {
      return undefined // gone, or not readable: memcheck's read of it would fault, which says no
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
  }
  const known = new Map<number, boolean>()
  return (addr) => {
    let answer = known.get(addr)
    if (answer !== undefined) return answer
    answer = false
    const place = placeOf(addr)
    if (place?.readable) {
      // memcheck's last word starts a word before the mapping's last byte
      const last = Math.min(addr + 8 * (VTABLE_WORDS - 1), place.end - 1 - 8)
      const count = last >= addr ? Math.floor((last - addr) / 8) + 1 : 0
      const bytes = count > 0 ? read(place, addr, count * 8) : undefined
      if (bytes) {
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
        let functions = 0
        for (let k = 0; k < count && functions < 2; k++) {
          const word = view.getUint32(8 * k + 4, true) * 0x100000000 + view.getUint32(8 * k, true)
          if (word === 0) continue
          if (!placeOf(word)?.executable) break
          functions++
        }
        answer = functions === 2
      }
    }
    known.set(addr, answer)
    return answer
  }
}

/** The index of the first of the sorted `starts` at or above `value` (starts.length when none is). */
function firstAtOrAbove(starts: Float64Array, value: number): number {
  let lo = 0
  let hi = starts.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (starts[mid]! < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * The extents of the mmapped malloc chunks holding the blocks that start in mapping `m` (sorted
 * starts given), in address order: glibc puts each block of the mmap threshold's size or more in
 * a mapping of its own, its header's size word marked IS_MMAPPED (bit 1) and the word before it
 * the alignment padding in front. Undefined when any block there is not such a chunk (then the
 * whole mapping is malloc's).
 */
function mmappedChunks(m: DumpedMapping, starts: Float64Array): [number, number][] | undefined {
  const view = new DataView(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength)
  const word = (addr: number): number | undefined =>
    addr >= m.start && addr + 8 <= m.end ? view.getUint32(addr - m.start + 4, true) * 0x100000000 + view.getUint32(addr - m.start, true) : undefined
  const chunks: [number, number][] = []
  let covered = m.start
  for (let i = firstAtOrAbove(starts, m.start); i < starts.length && starts[i]! < m.end; i++) {
    const block = starts[i]!
    if (block < covered) return undefined // a block inside the chunk before: not an mmapped chunk
    const size = word(block - 8)
    const padding = word(block - 16)
    if (size === undefined || padding === undefined || (size & 2) === 0) return undefined
    const start = block - 16 - padding
    const end = start + (size - (size % 8))
    if (start < covered || end > m.end || end <= block) return undefined
    chunks.push([start, end])
    covered = end
  }
  return chunks
}

/** glibc 2.36's struct malloc_state (an arena's header, right after its first heap's heap_info). */
const MALLOC_STATE_BYTES = 2200
/**
 * The sizes of glibc's heap_info, at the start of each heap of a thread's arena: 48 bytes since
 * glibc 2.35 (a `pagesize` field and its padding), 32 before.
 */
const HEAP_INFO_BYTES = [48, 32]
/** glibc's tcache_perthread_struct in a chunk: 64 two-byte counts, then 64 entry pointers. */
const TCACHE_CHUNK = 0x290

/**
 * The free chunks of one of glibc's heaps, as [user start, end) ranges: a chunk whose successor
 * says it is not in use (the bins), one that holds the tcache's key after its link (the tcache),
 * and the top chunk. An observer that saw only some blocks allocated (objects mode) counts the
 * rest of the heap as the program's memory; its free chunks are no roots, or the stale words they
 * keep would make lost blocks look reachable. Walked from the heap's start and trusted only if the
 * walk lands exactly on the heap's end; otherwise nothing is known free. Fastbin chunks look in use
 * and stay roots.
 */
export function freeChunks(m: DumpedMapping): [number, number][] {
  const region = [m]
  const word = (at: number): number => readWord(region, at) ?? NaN
  let first: number
  if (m.name === '[heap]') first = m.start
  else if (HEAP_INFO_BYTES.some((bytes) => word(m.start) === m.start + bytes)) {
    // the arena's first heap: heap_info's ar_ptr points just past it, at the arena's
    // malloc_state, and the first chunk follows that, placed so its user memory is 16-aligned
    const after = word(m.start) + MALLOC_STATE_BYTES
    first = after + ((16 - ((after + 16) % 16)) % 16)
  } else return [] // a later heap of an arena, or not glibc's: its layout is not known here
  const end = m.start + m.bytes.length
  const chunks: [number, number][] = []
  for (let c = first; ; ) {
    const header = word(c + 8)
    const size = header - (header % 8)
    if (!(size >= 32 && size % 16 === 0 && c + size <= end)) return []
    chunks.push([c, c + size])
    if (c + size + 16 > end) break // the top chunk runs to the heap's end
    c += size
  }
  // the tcache's key: the word after the link in every chunk a tcache holds (a thread's tcache is
  // the first chunk of the heap it first allocated in: the main thread's in [heap], another's in
  // its arena's first heap; the key is one for the whole process)
  let key: number | undefined
  if (chunks[0]![1] - chunks[0]![0] === TCACHE_CHUNK) {
    for (let i = 0; i < 64 && key === undefined; i++) {
      const entry = word(first + 16 + 128 + i * 8)
      if (entry > first && entry < end) key = word(entry + 8)
    }
  }
  const free: [number, number][] = []
  chunks.forEach(([c, next], i) => {
    const top = i === chunks.length - 1
    if (top || (word(next + 8) & 1) === 0 || (key !== undefined && key !== 0 && word(c + 24) === key)) free.push([c + 16, next])
  })
  return free
}

/** `regions` less the sorted, disjoint `ranges`. */
function withoutRanges(regions: MemoryRegion[], ranges: [number, number][]): MemoryRegion[] {
  if (ranges.length === 0) return regions
  const out: MemoryRegion[] = []
  for (const region of regions) {
    const regionEnd = region.start + region.bytes.length
    let from = region.start
    for (let i = firstRangeEndingAfter(ranges, from); i < ranges.length && ranges[i]![0] < regionEnd; i++) {
      const [lo, hi] = ranges[i]!
      if (lo > from) out.push({ start: from, bytes: region.bytes.subarray(from - region.start, lo - region.start) })
      from = Math.max(from, hi)
    }
    if (from < regionEnd) out.push({ start: from, bytes: region.bytes.subarray(from - region.start) })
  }
  return out
}

function firstRangeEndingAfter(ranges: [number, number][], at: number): number {
  let lo = 0
  let hi = ranges.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (ranges[mid]![1] <= at) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The stretches of mapping `m` between the blocks (sorted starts given): what no observed block holds. */
function outside(m: DumpedMapping, starts: Float64Array, blocks: ScanColumns): MemoryRegion[] {
  const ends = new Map<number, number>()
  for (let i = 0; i < blocks.count; i++) ends.set(blocks.starts[i]!, blocks.starts[i]! + Math.max(blocks.sizes[i]!, 1))
  const regions: MemoryRegion[] = []
  let from = m.start
  for (const start of starts) {
    if (start < m.start || start >= m.end) continue
    if (start > from) regions.push({ start: from, bytes: m.bytes.subarray(from - m.start, start - m.start) })
    from = Math.max(from, ends.get(start)!)
  }
  if (from < m.end) regions.push({ start: from, bytes: m.bytes.subarray(from - m.start) })
  return regions
}

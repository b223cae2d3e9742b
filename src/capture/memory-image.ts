import { readWord, scanColumns, type MemoryImage, type MemoryRegion, type ScanBlock, type ScanColumns } from '../model/leak-scan.js'

/** A writable mapping as the GDB script dumped it. */
export interface DumpedMapping {
  start: number
  end: number
  name: string
  bytes: Uint8Array
  /** Right above a PROT_NONE guard page: how glibc lays out a thread's stack. */
  guarded?: boolean
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
 * Decides what of a dump is heap and what is a root, as memcheck sees a process: the heap is
 * malloc's memory ([heap], arena heaps, mmapped chunks); roots are every other writable mapping,
 * each stack only from its thread's stack pointer up (below it is dead), and the registers.
 * At the end of the process memcheck scans no registers (its threads are gone): `withRegisters`
 * is false there.
 */
export function memoryImage(mappings: DumpedMapping[], threads: DumpedThread[], given: ScanBlock[] | ScanColumns, withRegisters: boolean, partial = false): MemoryImage {
  const blocks = scanColumns(given)
  const starts = blocks.starts.slice(0, blocks.count).sort()
  const holdsBlock = (m: DumpedMapping): boolean => {
    const lo = firstAtOrAbove(starts, m.start)
    return lo < starts.length && starts[lo]! < m.end
  }
  const heap: MemoryRegion[] = []
  const roots: MemoryRegion[] = []
  const allocatorRoots: MemoryRegion[] = []
  const startOnlyRoots: MemoryRegion[] = []
  for (const m of mappings) {
    const anonymous = m.name === ''
    const arena = m.name === '[heap]' || (anonymous && m.start % ARENA_ALIGNMENT === 0)
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
        const unseen = outside(m, starts, blocks)
        roots.push(...unseen)
        startOnlyRoots.push(...unseen)
      }
      continue
    }
    const thread = threads.find((t) => t.sp >= m.start && t.sp < m.end)
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
  return { heap, roots, registers, allocatorRoots, startOnlyRoots, chunkEnd }
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

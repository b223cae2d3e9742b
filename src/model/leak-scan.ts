import { LEAK_KINDS, type LeakKind } from './types.js'

/** A live heap block: where it starts and how many bytes the program asked for. */
export interface ScanBlock {
  start: number
  size: number
}

/** Live heap blocks as columns: row i starts at starts[i] and holds sizes[i] bytes. */
export interface ScanColumns {
  count: number
  starts: Float64Array
  sizes: Float64Array
}

/** Blocks given either way, as columns. */
export function scanColumns(blocks: ScanBlock[] | ScanColumns): ScanColumns {
  if (!Array.isArray(blocks)) return blocks
  return { count: blocks.length, starts: Float64Array.from(blocks, (b) => b.start), sizes: Float64Array.from(blocks, (b) => b.size) }
}

/** A stretch of the process's memory, copied out at one moment. */
export interface MemoryRegion {
  start: number
  bytes: Uint8Array
}

/**
 * What the leak scan reads: the live blocks' contents (inside `heap` regions), the roots (memory
 * that is not the heap: data segments, the used part of each stack) and every thread's registers.
 */
export interface MemoryImage {
  heap: MemoryRegion[]
  roots: MemoryRegion[]
  registers: number[]
  /**
   * Root regions whose interior pointers to the byte just past a chunk are allocator bookkeeping
   * (glibc's arena `top` and bins point at chunk headers), not the program's pointers.
   */
  allocatorRoots?: MemoryRegion[]
  /**
   * Root regions whose words count only as start pointers: memory the observer did not see
   * being allocated or freed (with only some objects observed), where stale words abound.
   */
  startOnlyRoots?: MemoryRegion[]
  /** Size of the allocator's chunk holding a block, when known: used with `allocatorRoots`. */
  chunkEnd?: (block: ScanBlock) => number | undefined
  /** Whether an address is a vtable's, as memcheck's multipleinheritance heuristic tests it (none is, when not given). */
  isVtable?: (addr: number) => boolean
}

/** The 64-bit word at `addr` in `regions`, or undefined when no region holds it. */
export function readWord(regions: MemoryRegion[], addr: number): number | undefined {
  for (const r of regions) {
    if (addr >= r.start && addr + 8 <= r.start + r.bytes.length) {
      const view = new DataView(r.bytes.buffer, r.bytes.byteOffset + addr - r.start, 8)
      return view.getUint32(4, true) * 0x100000000 + view.getUint32(0, true)
    }
  }
  return undefined
}

const UNREACHED = 0
const POSSIBLE = 1
const REACHABLE = 2
const INDIRECT = 3

/** A scan state's kind, as its index in LEAK_KINDS (the code `classifyColumns` returns). */
const KIND_OF_STATE = Uint8Array.from((['definite', 'possible', 'reachable', 'indirect'] as const).map((kind) => LEAK_KINDS.indexOf(kind)))

/** The code in LEAK_KINDS of a scan state as the preload interposer's scan sends it (its V records), or -1. */
export function kindOfScanState(state: number): number {
  return state >= 0 && state < KIND_OF_STATE.length ? KIND_OF_STATE[state]! : -1
}

/** Blocks in address order: the indices of their rows and their starts (made once per columns object). */
interface AddressOrder {
  order: Uint32Array
  starts: Float64Array
}

const addressOrders = new WeakMap<ScanColumns, AddressOrder>()

/**
 * The rows of `blocks` in address order, and their starts in that order: the memory image needs
 * them to tell heap from roots and the scan to find blocks, so one radix sort serves both.
 */
export function addressOrder(blocks: ScanColumns): AddressOrder {
  let found = addressOrders.get(blocks)
  if (!found) {
    const order = sortedIndices(blocks.starts.subarray(0, blocks.count))
    const starts = new Float64Array(blocks.count)
    for (let i = 0; i < blocks.count; i++) starts[i] = blocks.starts[order[i]!]!
    addressOrders.set(blocks, (found = { order, starts }))
  }
  return found
}

/**
 * A region's aligned 64-bit words as 32-bit halves, read in place: word k (at address first + 8k)
 * is u32[2k] (low) and u32[2k + 1] (high), as x86-64 stores them. User-space addresses fit in 47
 * bits, well inside a double.
 */
interface RegionWords {
  u32: Uint32Array
  first: number
  count: number
}

function regionWords(region: MemoryRegion): RegionWords {
  const skip = (8 - (region.start % 8)) % 8
  const count = Math.max(0, Math.floor((region.bytes.length - skip) / 8))
  const offset = region.bytes.byteOffset + skip
  // a view where the bytes allow one (a mapping's are page-aligned), else a copy (a Buffer's
  // slice() is a view, so the copy is made by hand)
  if (offset % 4 === 0) return { u32: new Uint32Array(region.bytes.buffer, offset, count * 2), first: region.start + skip, count }
  const copy = new Uint8Array(count * 8)
  copy.set(region.bytes.subarray(skip, skip + count * 8))
  return { u32: new Uint32Array(copy.buffer), first: region.start + skip, count }
}

/**
 * memcheck's leak classification over a memory image. A block reached from the roots through a
 * chain of start pointers is reachable; through any interior pointer, possible. Of the rest, a
 * block pointed to from another unreached block is indirect (it is lost because its owner is);
 * the others are definite. Returns one kind per block, in the order given.
 */
export function classifyBlocks(given: ScanBlock[] | ScanColumns, image: MemoryImage): LeakKind[] {
  return Array.from(classifyColumns(scanColumns(given), image), (code) => LEAK_KINDS[code]!)
}

/** `classifyBlocks` on columns, each block's kind as its index in LEAK_KINDS: no string or object per block. */
export function classifyColumns(blocks: ScanColumns, image: MemoryImage): Uint8Array {
  const n = blocks.count
  if (n === 0) return new Uint8Array(0)
  const { order, starts } = addressOrder(blocks)
  const ends = new Float64Array(n)
  for (let i = 0; i < n; i++) ends[i] = starts[i]! + blocks.sizes[order[i]!]!
  const state = new Uint8Array(n)
  const lowest = starts[0]!
  let highest = 0
  for (let i = 0; i < n; i++) if (ends[i]! > highest) highest = ends[i]!

  // The last block starting at or below p, if p lies inside it (a zero-size block is hit by its start).
  // Most words that look like pointers point at no block (into V8's heap, say): the pages the blocks
  // cover answer those at once, and the rest are searched among the blocks of their page alone.
  const pages = new BlockPages(starts, ends)
  const find = (p: number): number => {
    if (p < lowest || p > highest) return -1
    const at = pages.slotOf(Math.floor(p / PAGE))
    if (at < 0) return -1
    let lo = pages.first[at]!
    let hi = pages.last[at]!
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (starts[mid]! <= p) lo = mid
      else hi = mid - 1
    }
    if (starts[lo]! > p) return -1
    return p < ends[lo]! || p === starts[lo]! ? lo : -1
  }

  // Where each block's bytes are in the image: the heap regions in address order, found by bisection.
  const heap = [...image.heap].sort((a, b) => a.start - b.start)
  const regionStarts = heap.map((r) => r.start)
  const heapWords = heap.map(regionWords)
  const regionOf = (s: number, e: number): number => {
    let lo = 0
    let hi = heap.length - 1
    if (hi < 0 || s < regionStarts[0]!) return -1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (regionStarts[mid]! <= s) lo = mid
      else hi = mid - 1
    }
    return e <= regionStarts[lo]! + heap[lo]!.bytes.length ? lo : -1
  }
  // The words of block i (blockWords sets these): u32 pairs from word `wordFrom` to before `wordTo`.
  let words: Uint32Array = new Uint32Array(0)
  let wordFrom = 0
  let wordTo = 0
  /** Points words, wordFrom and wordTo at block i's aligned words (no copy); false when the image lacks them. */
  const blockWords = (i: number): boolean => {
    const s = starts[i]!
    const e = ends[i]!
    const r = regionOf(s, e)
    if (r < 0) return false
    const region = heapWords[r]!
    words = region.u32
    wordFrom = Math.ceil((s - region.first) / 8)
    wordTo = Math.floor((e - region.first) / 8)
    return true
  }
  const wordAt = (addr: number): number | undefined => readWord(heap, addr)
  const isVtable = image.isVtable

  // memcheck's heuristics (all on by default): interior pointers that C++ and common C idioms make.
  const heuristicallyReached = (p: number, i: number): boolean => {
    const s = starts[i]!
    const size = ends[i]! - s
    if (p === s + 24) {
      // std::string (old ABI): length, capacity, refcount, then the characters
      const capacity = wordAt(s + 8)
      const length = wordAt(s)
      if (capacity !== undefined && length !== undefined && 24 + capacity + 1 === size && length <= capacity) return true
    }
    if (p === s + 8) {
      const first = wordAt(s)
      if (first !== undefined && first > 0) {
        if (size - 8 === first) return true // length64: the first word is the size of the rest
        if ((size - 8) % first === 0) return true // new[]: the first word counts the elements
      }
    }
    // multipleinheritance: a pointer to a base class's part of an object after the first, each
    // part starting with its vtable pointer
    if (isVtable && p % 8 === 0 && p + 8 <= ends[i]! && size >= 8) {
      const inner = wordAt(p)
      const first = wordAt(s)
      if (inner !== undefined && first !== undefined && inner % 8 === 0 && inner >= 4096 && first % 8 === 0 && first >= 4096 && isVtable(inner) && isVtable(first)) return true
    }
    return false
  }

  // blocks marked but not yet scanned: a block is pushed once per state it reaches (at most twice)
  let stack = new Uint32Array(1024)
  let depth = 0
  const push = (i: number): void => {
    if (depth === stack.length) {
      const bigger = new Uint32Array(stack.length * 2)
      bigger.set(stack)
      stack = bigger
    }
    stack[depth++] = i
  }
  const reach = (p: number, priorDefinite: boolean): void => {
    const i = find(p)
    if (i < 0) return
    const current = state[i]!
    if (current === REACHABLE) return
    const viaStart = p === starts[i]! || heuristicallyReached(p, i)
    if (viaStart && priorDefinite) {
      state[i] = REACHABLE
      push(i)
    } else if (current === UNREACHED) {
      state[i] = POSSIBLE
      push(i)
    }
  }
  const drain = (): void => {
    while (depth > 0) {
      const i = stack[--depth]!
      if (!blockWords(i)) continue
      const definite = state[i] === REACHABLE
      const u32 = words
      for (let k = wordFrom, to = wordTo; k < to; k++) {
        const hi = u32[2 * k + 1]!
        // A high half of 2^16 or more is no user-space pointer.
        if (hi < 0x10000) reach(hi * 0x100000000 + u32[2 * k]!, definite)
      }
    }
  }

  const allocator = new Set(image.allocatorRoots ?? [])
  const startOnly = new Set(image.startOnlyRoots ?? [])
  for (const region of image.roots) {
    const { u32, count } = regionWords(region)
    const isStartOnly = startOnly.has(region)
    const isAllocator = allocator.has(region) && image.chunkEnd !== undefined
    for (let k = 0; k < count; k++) {
      const hi = u32[2 * k + 1]!
      if (hi >= 0x10000) continue
      const p = hi * 0x100000000 + u32[2 * k]!
      if (isStartOnly) {
        const i = find(p)
        if (i >= 0 && p === starts[i]!) reach(p, true)
      } else if (isAllocator) {
        const i = find(p)
        if (i >= 0 && p !== starts[i]! && image.chunkEnd!({ start: starts[i]!, size: ends[i]! - starts[i]! }) === p) continue
        reach(p, true)
      } else reach(p, true)
    }
    drain()
  }
  for (const p of image.registers) reach(p, true)
  drain()

  // Cliques: each unreached block (in address order) claims the unreached blocks it points to.
  for (let leader = 0; leader < n; leader++) {
    if (state[leader] !== UNREACHED) continue
    const pending = [leader]
    const claim = (p: number): void => {
      const j = find(p)
      if (j < 0 || j === leader || state[j] !== UNREACHED) return
      state[j] = INDIRECT
      pending.push(j)
    }
    while (pending.length > 0) {
      if (!blockWords(pending.pop()!)) continue
      const u32 = words
      for (let k = wordFrom, to = wordTo; k < to; k++) {
        const hi = u32[2 * k + 1]!
        if (hi < 0x10000) claim(hi * 0x100000000 + u32[2 * k]!)
      }
    }
  }

  const kinds = new Uint8Array(n)
  for (let i = 0; i < n; i++) kinds[order[i]!] = KIND_OF_STATE[state[i]!]!
  return kinds
}

/** The page size of BlockPages. */
const PAGE = 4096

/**
 * The pages that blocks in address order cover, each with the first and last block on it: an
 * open-addressed table keyed by page number. Blocks do not overlap, so the last block starting at
 * or below an address on a page is among that page's.
 */
class BlockPages {
  private readonly keys: Float64Array
  readonly first: Int32Array
  readonly last: Int32Array
  private readonly mask: number

  constructor(starts: Float64Array, ends: Float64Array) {
    const n = starts.length
    const lastPage = (i: number): number => Math.floor(Math.max(ends[i]! - 1, starts[i]!) / PAGE)
    let pages = 0
    for (let i = 0, seen = -1; i < n; i++) {
      const from = Math.max(Math.floor(starts[i]! / PAGE), seen + 1)
      const to = lastPage(i)
      if (to >= from) pages += to - from + 1
      if (to > seen) seen = to
    }
    let size = 16
    while (size < pages * 2) size *= 2
    this.keys = new Float64Array(size).fill(-1)
    this.first = new Int32Array(size)
    this.last = new Int32Array(size)
    this.mask = size - 1
    for (let i = 0; i < n; i++) {
      for (let page = Math.floor(starts[i]! / PAGE), to = lastPage(i); page <= to; page++) {
        let at = this.home(page)
        while (this.keys[at] !== -1 && this.keys[at] !== page) at = (at + 1) & this.mask
        if (this.keys[at] === -1) {
          this.keys[at] = page
          this.first[at] = i
        }
        this.last[at] = i
      }
    }
  }

  private home(page: number): number {
    return (Math.imul(page | 0, 0x9e3779b1) ^ Math.imul((page / 0x100000000) | 0, 0x85ebca6b)) & this.mask
  }

  /** The slot of `page`, or -1 when no block covers it. */
  slotOf(page: number): number {
    let at = this.home(page)
    for (let key = this.keys[at]!; key !== page; key = this.keys[at]!) {
      if (key === -1) return -1
      at = (at + 1) & this.mask
    }
    return at
  }
}

/**
 * The indices of `keys` (non-negative integers below 2^48: user-space addresses) in ascending key
 * order: an LSD radix sort in four passes of 12 bits, linear in time and memory, where a
 * comparison sort of millions of blocks takes seconds. Each key's halves travel with its index, so
 * a pass reads its input in order (not keys[index], a cache miss each); a pass whose digit is the
 * same for every key (the high bits of addresses in one region) is skipped.
 */
export function sortedIndices(keys: Float64Array): Uint32Array {
  const n = keys.length
  let index = new Uint32Array(n)
  let lo = new Uint32Array(n)
  let hi = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    const k = keys[i]!
    index[i] = i
    lo[i] = k % 0x100000000
    hi[i] = Math.floor(k / 0x100000000)
  }
  let index2 = new Uint32Array(n)
  let lo2 = new Uint32Array(n)
  let hi2 = new Uint32Array(n)
  const count = new Uint32Array(DIGIT_VALUES)
  for (let pass = 0; pass < 4; pass++) {
    count.fill(0)
    for (let i = 0; i < n; i++) count[digitOf(lo[i]!, hi[i]!, pass)]!++
    if (count[digitOf(lo[0]!, hi[0]!, pass)] === n) continue
    let sum = 0
    for (let d = 0; d < DIGIT_VALUES; d++) {
      const c = count[d]!
      count[d] = sum
      sum += c
    }
    for (let i = 0; i < n; i++) {
      const at = count[digitOf(lo[i]!, hi[i]!, pass)]!++
      index2[at] = index[i]!
      lo2[at] = lo[i]!
      hi2[at] = hi[i]!
    }
    ;[index, index2, lo, lo2, hi, hi2] = [index2, index, lo2, lo, hi2, hi]
  }
  return index
}

const DIGIT_BITS = 12
const DIGIT_VALUES = 1 << DIGIT_BITS

/** Digit `pass` (12 bits, least significant first) of the 48-bit key whose halves are lo and hi. */
function digitOf(lo: number, hi: number, pass: number): number {
  switch (pass) {
    case 0:
      return lo & 0xfff
    case 1:
      return (lo >>> 12) & 0xfff
    case 2:
      return (lo >>> 24) | ((hi & 0xf) << 8)
    default:
      return (hi >>> 4) & 0xfff
  }
}

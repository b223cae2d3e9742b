import type { LeakKind } from './types.js'

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

const KIND_OF_STATE: LeakKind[] = ['definite', 'possible', 'reachable', 'indirect']

/** Reads aligned 64-bit words as numbers: user-space addresses fit in 47 bits, well inside a double. */
function wordsOf(region: MemoryRegion, from = 0, to = region.bytes.length): Float64Array {
  const bytes = region.bytes
  const first = Math.max(0, from + ((8 - ((region.start + from) % 8)) % 8))
  const count = Math.max(0, Math.floor((to - first) / 8))
  const words = new Float64Array(count)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < count; i++) {
    const at = first + i * 8
    const hi = view.getUint32(at + 4, true)
    // A high half of 2^16 or more is no user-space pointer: keep it out of range cheaply.
    words[i] = hi >= 0x10000 ? -1 : hi * 0x100000000 + view.getUint32(at, true)
  }
  return words
}

/**
 * memcheck's leak classification over a memory image. A block reached from the roots through a
 * chain of start pointers is reachable; through any interior pointer, possible. Of the rest, a
 * block pointed to from another unreached block is indirect (it is lost because its owner is);
 * the others are definite. Returns one kind per block, in the order given.
 */
export function classifyBlocks(given: ScanBlock[] | ScanColumns, image: MemoryImage): LeakKind[] {
  const blocks = scanColumns(given)
  const n = blocks.count
  if (n === 0) return []
  const order = sortedIndices(blocks.starts.subarray(0, n))
  const starts = new Float64Array(n)
  const ends = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    starts[i] = blocks.starts[order[i]!]!
    ends[i] = starts[i]! + blocks.sizes[order[i]!]!
  }
  const state = new Uint8Array(n)
  const lowest = starts[0]!
  let highest = 0
  for (let i = 0; i < n; i++) if (ends[i]! > highest) highest = ends[i]!

  // The last block starting at or below p, if p lies inside it (a zero-size block is hit by its start).
  const find = (p: number): number => {
    if (p < lowest || p > highest) return -1
    let lo = 0
    let hi = n - 1
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
  const views = heap.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength))
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
  /** Calls `visit` with every aligned word of block i (no copy, no allocation per block). */
  const eachWord = (i: number, visit: (p: number) => void): void => {
    const s = starts[i]!
    const e = ends[i]!
    const r = regionOf(s, e)
    if (r < 0) return
    const view = views[r]!
    const base = regionStarts[r]!
    for (let at = s - base + ((8 - (s % 8)) % 8); at + 8 <= e - base; at += 8) {
      const hi = view.getUint32(at + 4, true)
      // A high half of 2^16 or more is no user-space pointer.
      if (hi < 0x10000) visit(hi * 0x100000000 + view.getUint32(at, true))
    }
  }
  const wordAt = (addr: number): number | undefined => readWord(heap, addr)

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
    return false
  }

  const stack: number[] = []
  const reach = (p: number, priorDefinite: boolean): void => {
    const i = find(p)
    if (i < 0) return
    const current = state[i]!
    if (current === REACHABLE) return
    const viaStart = p === starts[i]! || heuristicallyReached(p, i)
    if (viaStart && priorDefinite) {
      state[i] = REACHABLE
      stack.push(i)
    } else if (current === UNREACHED) {
      state[i] = POSSIBLE
      stack.push(i)
    }
  }
  const reachDefinite = (p: number): void => reach(p, true)
  const reachPossible = (p: number): void => reach(p, false)
  const drain = (): void => {
    while (stack.length > 0) {
      const i = stack.pop()!
      eachWord(i, state[i] === REACHABLE ? reachDefinite : reachPossible)
    }
  }

  const allocator = new Set(image.allocatorRoots ?? [])
  const startOnly = new Set(image.startOnlyRoots ?? [])
  for (const region of image.roots) {
    const words = wordsOf(region)
    if (startOnly.has(region)) {
      for (const p of words) {
        const i = find(p)
        if (i >= 0 && p === starts[i]!) reach(p, true)
      }
    } else if (allocator.has(region) && image.chunkEnd) {
      for (const p of words) {
        const i = find(p)
        if (i >= 0 && p !== starts[i]! && image.chunkEnd({ start: starts[i]!, size: ends[i]! - starts[i]! }) === p) continue
        reach(p, true)
      }
    } else {
      for (const p of words) reach(p, true)
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
    while (pending.length > 0) eachWord(pending.pop()!, claim)
  }

  const kinds: LeakKind[] = new Array(n)
  for (let i = 0; i < n; i++) kinds[order[i]!] = KIND_OF_STATE[state[i]!]!
  return kinds
}

/**
 * The indices of `keys` (non-negative integers below 2^48: user-space addresses) in ascending key
 * order: an LSD radix sort in three passes of 16 bits, linear in time and memory, where a
 * comparison sort of millions of blocks takes seconds.
 */
export function sortedIndices(keys: Float64Array): Uint32Array {
  const n = keys.length
  let from = new Uint32Array(n)
  let to = new Uint32Array(n)
  for (let i = 0; i < n; i++) from[i] = i
  const digit = (k: number, pass: number): number => (pass === 2 ? Math.floor(k / 0x100000000) & 0xffff : pass === 1 ? (k % 0x100000000) >>> 16 : (k % 0x100000000) & 0xffff)
  const count = new Uint32Array(0x10000 + 1)
  for (let pass = 0; pass < 3; pass++) {
    count.fill(0)
    for (let i = 0; i < n; i++) count[digit(keys[i]!, pass) + 1]!++
    for (let d = 0; d < 0x10000; d++) count[d + 1]! += count[d]!
    for (let i = 0; i < n; i++) {
      const index = from[i]!
      to[count[digit(keys[index]!, pass)]!++] = index
    }
    ;[from, to] = [to, from]
  }
  return from
}

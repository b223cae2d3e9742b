import type { ScanBlock } from './leak-scan.js'

/** A block the program holds: its size, where it was allocated, during which test case. */
export interface LiveBlock extends ScanBlock {
  stack: number
  /** Index into the model's test cases, or -1 outside any. */
  test: number
  /** Made by realloc (a suppression's allocator frame is then `realloc`, not any of the malloc family). */
  realloc?: true
  /** Made by this operator new, where the backend tells (demangled: `operator new[](unsigned long)`). */
  allocator?: string
  /** Its place in allocation order: the block's identity across memory images. */
  seq: number
}

/** The live blocks as columns, in no particular order: what the leak scan and the images read. */
export interface BlockColumns {
  count: number
  starts: Float64Array
  sizes: Float64Array
  stacks: Int32Array
  tests: Int32Array
  /** 0: the malloc family; REALLOC: realloc; OPERATOR_NEW + i: NEW_OPERATORS[i]. */
  reallocs: Uint8Array
  seqs: Float64Array
}

/** The operators new a backend may name a block's allocator by, in the capture protocol's order (A lines' 1, 2, ...). */
export const NEW_OPERATORS = [
  'operator new(unsigned long)',
  'operator new[](unsigned long)',
  'operator new(unsigned long, std::nothrow_t const&)',
  'operator new[](unsigned long, std::nothrow_t const&)',
  'operator new(unsigned long, std::align_val_t)',
  'operator new[](unsigned long, std::align_val_t)',
  'operator new(unsigned long, std::align_val_t, std::nothrow_t const&)',
  'operator new[](unsigned long, std::align_val_t, std::nothrow_t const&)',
] as const

/** A block's allocator as a column holds it. */
export const REALLOC = 1
/** The first operator new's code in a column; the others follow in NEW_OPERATORS' order. */
export const OPERATOR_NEW = 2

/** The block of row `i` of `columns`, as an object (made on demand: most blocks never need one). */
export function blockAt(columns: BlockColumns, i: number): LiveBlock {
  const block: LiveBlock = { start: columns.starts[i]!, size: columns.sizes[i]!, stack: columns.stacks[i]!, test: columns.tests[i]!, seq: columns.seqs[i]! }
  const allocator = columns.reallocs[i]!
  if (allocator === REALLOC) block.realloc = true
  else if (allocator >= OPERATOR_NEW) block.allocator = NEW_OPERATORS[allocator - OPERATOR_NEW]
  return block
}

const EMPTY = 0

/** Room for `n` rows of columns. */
function allocateColumns(n: number): BlockColumns {
  return {
    count: n,
    starts: new Float64Array(n),
    sizes: new Float64Array(n),
    stacks: new Int32Array(n),
    tests: new Int32Array(n),
    reallocs: new Uint8Array(n),
    seqs: new Float64Array(n),
  }
}

/** Copies row `i` of `from` into row `j` of `to`. */
function copyRow(from: BlockColumns, i: number, to: BlockColumns, j: number): void {
  to.starts[j] = from.starts[i]!
  to.sizes[j] = from.sizes[i]!
  to.stacks[j] = from.stacks[i]!
  to.tests[j] = from.tests[i]!
  to.reallocs[j] = from.reallocs[i]!
  to.seqs[j] = from.seqs[i]!
}

/**
 * The live blocks by address, in typed arrays: an open-addressed hash table (linear probing,
 * deletion by backward shift), so millions of blocks cost tens of bytes each and no object, where a
 * Map of objects costs hundreds and keeps the garbage collector busy. Addresses are never 0; a
 * slot's address is its row's `starts`.
 */
export class BlockTable {
  private capacity = 1 << 10
  private slots = allocateColumns(this.capacity)
  private count = 0
  private nextSeq = 0
  /** The block `delete` removed, or `set` replaced: its size, stack and test case. */
  readonly removed = { size: 0, stack: 0, test: -1 }

  /** How many blocks are live. */
  get size(): number {
    return this.count
  }

  private home(addr: number): number {
    // addresses are 16-byte aligned: mix the bits above, then keep as many as the table has slots
    const x = Math.imul((addr / 16) | 0, 0x9e3779b1) ^ Math.imul(Math.floor(addr / 0x1000000000) | 0, 0x85ebca6b)
    return (x >>> 0) & (this.capacity - 1)
  }

  private slot(addr: number): number {
    const keys = this.slots.starts
    let at = this.home(addr)
    while (keys[at] !== EMPTY && keys[at] !== addr) at = (at + 1) & (this.capacity - 1)
    return at
  }

  /**
   * Adds a block (replacing one at the same address the model never saw freed: true then, with
   * that one in `removed`); `allocator` as the column holds it.
   */
  set(addr: number, size: number, stack: number, test: number, allocator: number, seq = this.nextSeq++): boolean {
    if ((this.count + 1) * 2 > this.capacity) this.grow()
    const at = this.slot(addr)
    const s = this.slots
    const replaced = s.starts[at] !== EMPTY
    if (replaced) this.remember(at)
    else this.count++
    s.starts[at] = addr
    s.sizes[at] = size
    s.stacks[at] = stack
    s.tests[at] = test
    s.reallocs[at] = allocator
    s.seqs[at] = seq
    return replaced
  }

  /**
   * Room in the allocation order for `span` blocks an observer numbered itself (a batch): the
   * first of them is returned, and a block of the batch numbered k there takes that plus k.
   */
  reserveSeqs(span: number): number {
    const first = this.nextSeq
    this.nextSeq += span
    return first
  }

  private remember(at: number): void {
    this.removed.size = this.slots.sizes[at]!
    this.removed.stack = this.slots.stacks[at]!
    this.removed.test = this.slots.tests[at]!
  }

  has(addr: number): boolean {
    return this.slots.starts[this.slot(addr)] === addr
  }

  /** The block at `addr`, as an object, or undefined. */
  get(addr: number): LiveBlock | undefined {
    const at = this.slot(addr)
    return this.slots.starts[at] === addr ? blockAt(this.slots, at) : undefined
  }

  /** Removes the block at `addr` (then in `removed`); false when there was none. */
  delete(addr: number): boolean {
    const keys = this.slots.starts
    let hole = this.slot(addr)
    if (keys[hole] !== addr) return false
    this.remember(hole)
    const mask = this.capacity - 1
    for (let i = (hole + 1) & mask; keys[i] !== EMPTY; i = (i + 1) & mask) {
      const home = this.home(keys[i]!)
      // move i into the hole unless its home lies cyclically in (hole, i]
      if (i > hole ? home <= hole || home > i : home <= hole && home > i) {
        copyRow(this.slots, i, this.slots, hole)
        hole = i
      }
    }
    keys[hole] = EMPTY
    this.count--
    return true
  }

  private grow(): void {
    const old = this.slots
    const oldCapacity = this.capacity
    this.capacity *= 2
    this.slots = allocateColumns(this.capacity)
    for (let i = 0; i < oldCapacity; i++) if (old.starts[i] !== EMPTY) copyRow(old, i, this.slots, this.slot(old.starts[i]!))
  }

  /** The live blocks as columns (a copy: the table may change while they are read). */
  columns(): BlockColumns {
    const out = allocateColumns(this.count)
    let j = 0
    for (let i = 0; i < this.capacity; i++) if (this.slots.starts[i] !== EMPTY) copyRow(this.slots, i, out, j++)
    return out
  }

  /** The addresses of the live blocks. */
  *keysOf(): IterableIterator<number> {
    for (let i = 0; i < this.capacity; i++) if (this.slots.starts[i] !== EMPTY) yield this.slots.starts[i]!
  }

  /** The live blocks, as objects: for the few places that want them all (tests, small runs). */
  *values(): IterableIterator<LiveBlock> {
    const columns = this.columns()
    for (let i = 0; i < columns.count; i++) yield blockAt(columns, i)
  }
}

import type { ScanBlock } from './leak-scan.js'

/** A block the program holds: its size, where it was allocated, during which test case. */
export interface LiveBlock extends ScanBlock {
  stack: number
  /** Index into the model's test cases, or -1 outside any. */
  test: number
  /** Made by realloc (a suppression's allocator frame is then `realloc`, not any of the malloc family). */
  realloc?: true
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
  reallocs: Uint8Array
  seqs: Float64Array
}

/** The block of row `i` of `columns`, as an object (made on demand: most blocks never need one). */
export function blockAt(columns: BlockColumns, i: number): LiveBlock {
  const block: LiveBlock = { start: columns.starts[i]!, size: columns.sizes[i]!, stack: columns.stacks[i]!, test: columns.tests[i]!, seq: columns.seqs[i]! }
  if (columns.reallocs[i]) block.realloc = true
  return block
}

const EMPTY = 0

/**
 * The live blocks by address, in typed arrays: an open-addressed hash table (linear probing,
 * deletion by backward shift), so millions of blocks cost tens of bytes each and no object, where a
 * Map of objects costs hundreds and keeps the garbage collector busy. Addresses are never 0.
 */
export class BlockTable {
  private capacity = 1 << 10
  private keys = new Float64Array(this.capacity)
  private sizes = new Float64Array(this.capacity)
  private stacks = new Int32Array(this.capacity)
  private tests = new Int32Array(this.capacity)
  private reallocs = new Uint8Array(this.capacity)
  private seqs = new Float64Array(this.capacity)
  private count = 0
  private nextSeq = 0

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
    let at = this.home(addr)
    while (this.keys[at] !== EMPTY && this.keys[at] !== addr) at = (at + 1) & (this.capacity - 1)
    return at
  }

  /** Adds a block (replacing one at the same address the model never saw freed). */
  set(addr: number, size: number, stack: number, test: number, realloc: boolean): void {
    if ((this.count + 1) * 2 > this.capacity) this.grow()
    const at = this.slot(addr)
    if (this.keys[at] === EMPTY) this.count++
    this.keys[at] = addr
    this.sizes[at] = size
    this.stacks[at] = stack
    this.tests[at] = test
    this.reallocs[at] = realloc ? 1 : 0
    this.seqs[at] = this.nextSeq++
  }

  has(addr: number): boolean {
    return this.keys[this.slot(addr)] === addr
  }

  /** The block at `addr`, as an object, or undefined. */
  get(addr: number): LiveBlock | undefined {
    const at = this.slot(addr)
    if (this.keys[at] !== addr) return undefined
    const block: LiveBlock = { start: addr, size: this.sizes[at]!, stack: this.stacks[at]!, test: this.tests[at]!, seq: this.seqs[at]! }
    if (this.reallocs[at]) block.realloc = true
    return block
  }

  /** Removes the block at `addr`; false when there was none. */
  delete(addr: number): boolean {
    let hole = this.slot(addr)
    if (this.keys[hole] !== addr) return false
    const mask = this.capacity - 1
    for (let i = (hole + 1) & mask; this.keys[i] !== EMPTY; i = (i + 1) & mask) {
      const home = this.home(this.keys[i]!)
      // move i into the hole unless its home lies cyclically in (hole, i]
      if (i > hole ? home <= hole || home > i : home <= hole && home > i) {
        this.move(i, hole)
        hole = i
      }
    }
    this.keys[hole] = EMPTY
    this.count--
    return true
  }

  private move(from: number, to: number): void {
    this.keys[to] = this.keys[from]!
    this.sizes[to] = this.sizes[from]!
    this.stacks[to] = this.stacks[from]!
    this.tests[to] = this.tests[from]!
    this.reallocs[to] = this.reallocs[from]!
    this.seqs[to] = this.seqs[from]!
  }

  private grow(): void {
    const old = { keys: this.keys, sizes: this.sizes, stacks: this.stacks, tests: this.tests, reallocs: this.reallocs, seqs: this.seqs, capacity: this.capacity }
    this.capacity *= 2
    this.keys = new Float64Array(this.capacity)
    this.sizes = new Float64Array(this.capacity)
    this.stacks = new Int32Array(this.capacity)
    this.tests = new Int32Array(this.capacity)
    this.reallocs = new Uint8Array(this.capacity)
    this.seqs = new Float64Array(this.capacity)
    for (let i = 0; i < old.capacity; i++) {
      const addr = old.keys[i]!
      if (addr === EMPTY) continue
      const at = this.slot(addr)
      this.keys[at] = addr
      this.sizes[at] = old.sizes[i]!
      this.stacks[at] = old.stacks[i]!
      this.tests[at] = old.tests[i]!
      this.reallocs[at] = old.reallocs[i]!
      this.seqs[at] = old.seqs[i]!
    }
  }

  /** The live blocks as columns (a copy: the table may change while they are read). */
  columns(): BlockColumns {
    const n = this.count
    const out: BlockColumns = {
      count: n,
      starts: new Float64Array(n),
      sizes: new Float64Array(n),
      stacks: new Int32Array(n),
      tests: new Int32Array(n),
      reallocs: new Uint8Array(n),
      seqs: new Float64Array(n),
    }
    let j = 0
    for (let i = 0; i < this.capacity; i++) {
      if (this.keys[i] === EMPTY) continue
      out.starts[j] = this.keys[i]!
      out.sizes[j] = this.sizes[i]!
      out.stacks[j] = this.stacks[i]!
      out.tests[j] = this.tests[i]!
      out.reallocs[j] = this.reallocs[i]!
      out.seqs[j] = this.seqs[i]!
      j++
    }
    return out
  }

  /** The addresses of the live blocks. */
  *keysOf(): IterableIterator<number> {
    for (let i = 0; i < this.capacity; i++) if (this.keys[i] !== EMPTY) yield this.keys[i]!
  }

  /** The live blocks, as objects: for the few places that want them all (tests, small runs). */
  *values(): IterableIterator<LiveBlock> {
    const columns = this.columns()
    for (let i = 0; i < columns.count; i++) yield blockAt(columns, i)
  }
}

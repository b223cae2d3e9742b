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

/**
 * A column's allocator code for the capture protocol's (A lines' and records' `new`): 0 the malloc
 * family, 1 to 8 NEW_OPERATORS' in order, 9 realloc (an observer that sends no R line for it).
 */
export function allocatorCode(protocol: number): number {
  return protocol === 0 ? 0 : protocol === NEW_OPERATORS.length + 1 ? REALLOC : OPERATOR_NEW + protocol - 1
}

/** The block of row `i` of `columns`, as an object (made on demand: most blocks never need one). */
export function blockAt(columns: BlockColumns, i: number): LiveBlock {
  const block: LiveBlock = { start: columns.starts[i]!, size: columns.sizes[i]!, stack: columns.stacks[i]!, test: columns.tests[i]!, seq: columns.seqs[i]! }
  const allocator = columns.reallocs[i]!
  if (allocator === REALLOC) block.realloc = true
  else if (allocator >= OPERATOR_NEW) block.allocator = NEW_OPERATORS[allocator - OPERATOR_NEW]
  return block
}

/** Room for `n` rows of columns (count: `count`). */
function allocateColumns(n: number, count = n): BlockColumns {
  return {
    count,
    starts: new Float64Array(n),
    sizes: new Float64Array(n),
    stacks: new Int32Array(n),
    tests: new Int32Array(n),
    reallocs: new Uint8Array(n),
    seqs: new Float64Array(n),
  }
}

/** The first `count` rows of `from` in columns of room `n`. */
function copyColumns(from: BlockColumns, count: number, n: number): BlockColumns {
  const to = allocateColumns(n, count)
  to.starts.set(from.starts.subarray(0, count))
  to.sizes.set(from.sizes.subarray(0, count))
  to.stacks.set(from.stacks.subarray(0, count))
  to.tests.set(from.tests.subarray(0, count))
  to.reallocs.set(from.reallocs.subarray(0, count))
  to.seqs.set(from.seqs.subarray(0, count))
  return to
}

/** The rows of `columns` allocated during test case `test` (a copy). */
export function columnsOfTest(columns: BlockColumns, test: number): BlockColumns {
  let count = 0
  for (let i = 0; i < columns.count; i++) if (columns.tests[i] === test) count++
  const out = allocateColumns(count)
  for (let i = 0, j = 0; i < columns.count; i++) if (columns.tests[i] === test) copyRow(columns, i, out, j++)
  return out
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

/** How full the index may get (linear probing stays short well past this). */
const MAX_LOAD = 0.7

/**
 * The live blocks in typed arrays: dense rows (a deleted block's row takes the last row) and an
 * open-addressed index from address to row (linear probing, deletion by backward shift), so
 * millions of blocks cost about 40 bytes each and no object, where a Map of objects costs hundreds
 * and keeps the garbage collector busy. `columns()` hands out the rows themselves: the table copies
 * them before it next changes, so what was handed out stays as it was.
 */
export class BlockTable {
  private rows = allocateColumns(1 << 10, 0)
  /** Row + 1 of the block whose address hashes here, or 0. */
  private index = new Int32Array(1 << 11)
  private count = 0
  private nextSeq = 0
  /** The rows were handed out by `columns()`: copy them before writing. */
  private shared = false
  /** The block `delete` removed, or `set` replaced: its size, stack and test case. */
  readonly removed = { size: 0, stack: 0, test: -1 }

  /** How many blocks are live. */
  get size(): number {
    return this.count
  }

  private home(addr: number): number {
    // a page's place is hashed and its blocks (16-byte aligned) follow in address order: a batch
    // comes page by page (the interposer's table keeps pages together too), so the index is
    // written a few cache lines at a time instead of one cold line a block
    const page = Math.floor(addr / 4096)
    const x = Math.imul(page | 0, 0x9e3779b1) ^ Math.imul((page / 0x100000000) | 0, 0x85ebca6b)
    return ((x >>> 0) + ((addr / 16) & 255)) & (this.index.length - 1)
  }

  /** The index slot of `addr`: the one holding its row, or the empty one where it would go. */
  private slot(addr: number): number {
    const index = this.index
    const starts = this.rows.starts
    const mask = index.length - 1
    let at = this.home(addr)
    for (let row = index[at]!; row !== 0 && starts[row - 1] !== addr; row = index[at]!) at = (at + 1) & mask
    return at
  }

  /** Makes room for `more` blocks beyond those live (an observer's batch says how many come). */
  reserve(more: number): void {
    const need = this.count + more
    if (need > this.rows.starts.length) this.resizeRows(need)
    if (need > this.index.length * MAX_LOAD) this.resizeIndex(need)
  }

  private writable(): BlockColumns {
    if (this.shared) {
      this.rows = copyColumns(this.rows, this.count, this.rows.starts.length)
      this.shared = false
    }
    return this.rows
  }

  private resizeRows(need: number): void {
    this.rows = copyColumns(this.rows, this.count, Math.max(need, Math.ceil(this.rows.starts.length * 1.5)))
    this.shared = false
  }

  private resizeIndex(need: number): void {
    let size = this.index.length
    while (need > size * MAX_LOAD) size *= 2
    this.index = new Int32Array(size)
    const starts = this.rows.starts
    for (let row = 0; row < this.count; row++) this.index[this.slot(starts[row]!)] = row + 1
  }

  /**
   * Adds a block (replacing one at the same address the model never saw freed: true then, with
   * that one in `removed`); `allocator` as the column holds it; `seq` its place in allocation
   * order (by default the next).
   */
  set(addr: number, size: number, stack: number, test: number, allocator: number, seq = this.nextSeq++): boolean {
    if (this.count + 1 > this.rows.starts.length) this.resizeRows(this.count + 1)
    if (this.count + 1 > this.index.length * MAX_LOAD) this.resizeIndex(this.count + 1)
    const s = this.writable()
    const at = this.slot(addr)
    let row = this.index[at]! - 1
    const replaced = row >= 0
    if (replaced) this.remember(row)
    else {
      row = this.count++
      this.index[at] = row + 1
    }
    s.starts[row] = addr
    s.sizes[row] = size
    s.stacks[row] = stack
    s.tests[row] = test
    s.reallocs[row] = allocator
    s.seqs[row] = seq
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

  private remember(row: number): void {
    this.removed.size = this.rows.sizes[row]!
    this.removed.stack = this.rows.stacks[row]!
    this.removed.test = this.rows.tests[row]!
  }

  has(addr: number): boolean {
    return this.index[this.slot(addr)] !== 0
  }

  /** The row of the block at `addr` in the columns `columns()` hands out until the table next changes, or -1. */
  rowOf(addr: number): number {
    return this.index[this.slot(addr)]! - 1
  }

  /** The stack id of the block at `addr`, or -1 when there is none. */
  stackOf(addr: number): number {
    const row = this.index[this.slot(addr)]! - 1
    return row >= 0 ? this.rows.stacks[row]! : -1
  }

  /** The block at `addr`, as an object, or undefined. */
  get(addr: number): LiveBlock | undefined {
    const row = this.index[this.slot(addr)]! - 1
    return row >= 0 ? blockAt(this.rows, row) : undefined
  }

  /** Removes the block at `addr` (then in `removed`); false when there was none. */
  delete(addr: number): boolean {
    let hole = this.slot(addr)
    const index = this.index
    const row = index[hole]! - 1
    if (row < 0) return false
    this.remember(row)
    const s = this.writable()
    const mask = index.length - 1
    for (let i = (hole + 1) & mask; index[i] !== 0; i = (i + 1) & mask) {
      const home = this.home(s.starts[index[i]! - 1]!)
      // move i into the hole unless its home lies cyclically in (hole, i]
      if (i > hole ? home <= hole || home > i : home <= hole && home > i) {
        index[hole] = index[i]!
        hole = i
      }
    }
    index[hole] = 0
    const last = --this.count
    if (row !== last) {
      // the last row fills the one freed, and its address's slot follows it
      copyRow(s, last, s, row)
      index[this.slot(s.starts[row]!)] = row + 1
    }
    return true
  }

  /** The live blocks as columns: a view that stays as it is while the table changes (see the class). */
  columns(): BlockColumns {
    this.shared = true
    return this.view()
  }

  /**
   * The live blocks as columns, valid only until the table next changes: for a use that is done
   * before then (a test end's kinds), which then costs no copy of the rows at the next change.
   */
  view(): BlockColumns {
    const r = this.rows
    const n = this.count
    return {
      count: n,
      starts: r.starts.subarray(0, n),
      sizes: r.sizes.subarray(0, n),
      stacks: r.stacks.subarray(0, n),
      tests: r.tests.subarray(0, n),
      reallocs: r.reallocs.subarray(0, n),
      seqs: r.seqs.subarray(0, n),
    }
  }

  /** The addresses of the live blocks. */
  *keysOf(): IterableIterator<number> {
    const columns = this.columns()
    for (let i = 0; i < columns.count; i++) yield columns.starts[i]!
  }

  /** The live blocks, as objects: for the few places that want them all (tests, small runs). */
  *values(): IterableIterator<LiveBlock> {
    const columns = this.columns()
    for (let i = 0; i < columns.count; i++) yield blockAt(columns, i)
  }
}

/** Live bytes and blocks of one allocation stack (by the observer's stack id). */
export interface StackAmount {
  stack: number
  bytes: number
  blocks: number
}

/** Below this many logged changes the log is kept whatever the number of stacks. */
const LOG_MIN = 4096

// a tracker's columns before its first change and after its last: never written (grow replaces them)
const NO_NUMBERS = new Float64Array(0)
const NO_FLAGS = new Uint8Array(0)

/**
 * A high-water mark of live bytes, and the stacks that held them at that moment. A growing heap
 * sets a new peak at nearly every allocation, so nothing is copied then: the tracker keeps each
 * stack's live bytes now and the changes made since the peak; the stacks at the peak are now less
 * those changes. Once the changes outnumber twice the stacks in use the snapshot is made (once)
 * and nothing more is logged until the next peak: a few operations per event, amortized. The
 * preload interposer keeps the same tracker in C (src/capture/preload/peaks.c), to the same rules:
 * a peak is set when the total first goes above the last one.
 */
export class PeakTracker {
  total = 0
  peak = 0
  // by stack id (dense, from the observer): typed columns, as a Map per event costs ten times more;
  // made at the first change (a test case's tracker goes unused where the observer keeps its peaks)
  private bytes = NO_NUMBERS
  private blocks = NO_NUMBERS
  private isUsed = NO_FLAGS
  /** The stacks with any change, in first-change order. */
  private readonly used: number[] = []
  /** Changes since the peak (stack, bytes, blocks), or undefined once the snapshot is made. */
  private log: number[] | undefined
  private snapshot: StackAmount[] = []

  /** A block of `bytes` joins (`blocks` 1) or leaves (-1, bytes negative) the live set. */
  change(stack: number, bytes: number, blocks: number): void {
    if (stack >= this.bytes.length) this.grow(stack)
    if (!this.isUsed[stack]) {
      this.isUsed[stack] = 1
      this.used.push(stack)
    }
    this.bytes[stack] += bytes
    this.blocks[stack] += blocks
    this.total += bytes
    if (this.total > this.peak) {
      this.peak = this.total
      // a growing heap sets a peak at nearly every allocation: the log is emptied, not made anew
      if (this.log) this.log.length = 0
      else this.log = []
      return
    }
    if (!this.log) return
    this.log.push(stack, bytes, blocks)
    if (this.log.length / 3 >= LOG_MIN + 2 * this.used.length) this.freeze()
  }

  private grow(stack: number): void {
    let size = Math.max(this.bytes.length, 64)
    while (size <= stack) size *= 2
    const bytes = new Float64Array(size)
    const blocks = new Float64Array(size)
    const isUsed = new Uint8Array(size)
    bytes.set(this.bytes)
    blocks.set(this.blocks)
    isUsed.set(this.isUsed)
    this.bytes = bytes
    this.blocks = blocks
    this.isUsed = isUsed
  }

  private freeze(): void {
    if (!this.log) return
    const bytes = new Map<number, number>()
    const blocks = new Map<number, number>()
    for (const stack of this.used) {
      bytes.set(stack, this.bytes[stack]!)
      blocks.set(stack, this.blocks[stack]!)
    }
    for (let i = this.log.length - 3; i >= 0; i -= 3) {
      const stack = this.log[i]!
      bytes.set(stack, bytes.get(stack)! - this.log[i + 1]!)
      blocks.set(stack, blocks.get(stack)! - this.log[i + 2]!)
    }
    this.snapshot = []
    for (const [stack, n] of blocks) if (n > 0) this.snapshot.push({ stack, bytes: bytes.get(stack)!, blocks: n })
    this.log = undefined
  }

  /** The stacks whose blocks were live at the peak. */
  sites(): StackAmount[] {
    this.freeze()
    return this.snapshot
  }

  /**
   * No more changes (a test case ended): the sites are kept, the columns let go, so that a
   * tracker per test case costs its sites, not a column as long as the run's stack ids.
   */
  finish(): void {
    this.freeze()
    this.bytes = NO_NUMBERS
    this.blocks = NO_NUMBERS
    this.isUsed = NO_FLAGS
    this.used.length = 0
  }
}

/** How many points a heap series keeps at most. */
export const SERIES_MAX = 512

/**
 * Live heap bytes against the count of allocator events (allocations and frees of known blocks),
 * in at most SERIES_MAX points: each point is the first event of its span and the most bytes
 * live after any event in it; when full, neighbours merge and spans double. The interposer samples
 * the same way, so the same program gives the same series on every backend.
 */
export class HeapSeriesSampler {
  private events = 0
  private width = 1
  readonly xs: number[] = []
  readonly ys: number[] = []

  /** One event happened; `bytes` are live after it. */
  note(bytes: number): void {
    this.events++
    const n = this.xs.length
    if (n > 0 && this.events < this.xs[n - 1]! + this.width) {
      if (bytes > this.ys[n - 1]!) this.ys[n - 1] = bytes
      return
    }
    if (n === SERIES_MAX) {
      for (let i = 0; i < SERIES_MAX / 2; i++) {
        this.xs[i] = this.xs[2 * i]!
        this.ys[i] = Math.max(this.ys[2 * i]!, this.ys[2 * i + 1]!)
      }
      this.xs.length = this.ys.length = SERIES_MAX / 2
      this.width *= 2
      if (this.events < this.xs[SERIES_MAX / 2 - 1]! + this.width) {
        if (bytes > this.ys[SERIES_MAX / 2 - 1]!) this.ys[SERIES_MAX / 2 - 1] = bytes
        return
      }
    }
    this.xs.push(this.events)
    this.ys.push(bytes)
  }

  /** The points, as [event, bytes] pairs. */
  points(): [number, number][] {
    return this.xs.map((x, i) => [x, this.ys[i]!])
  }
}

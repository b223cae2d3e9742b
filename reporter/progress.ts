import { projectPath } from '../src/report/saved-runs.js'
import { readCaptures, type RunningCapture } from '../src/report/results-dir.js'

/** When progress lines appear. */
export interface ProgressTiming {
  /** A capture is mentioned once it has run this long (ms). @default 2000 */
  after: number
  /** Then again at this interval (ms). @default 10000 */
  every: number
  /** How often the results directory is looked at (ms). @default 500 */
  poll: number
  now: () => number
}

const DEFAULT_TIMING: ProgressTiming = { after: 2000, every: 10_000, poll: 500, now: Date.now }

/**
 * Lines about long captures, printed through the framework's own logger (so they land above its
 * live status, not across it): which program, which test, how long so far, and when it finished.
 * The test workers file their captures in the results directory; this watches it.
 */
export class CaptureProgress {
  private timer: NodeJS.Timeout | undefined
  private shown = new Map<string, { capture: RunningCapture; lastLine: number }>()
  private readonly timing: ProgressTiming

  constructor(
    private readonly dir: string,
    private readonly root: string,
    private readonly log: (line: string) => void,
    timing: Partial<ProgressTiming> = {},
  ) {
    this.timing = { ...DEFAULT_TIMING, ...timing }
  }

  start(): void {
    this.stop()
    this.timer = setInterval(() => this.poll(), this.timing.poll)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    this.poll()
    this.shown.clear()
  }

  private describe(c: RunningCapture): string {
    const [program = '?', ...args] = c.command
    const backend = c.backend ? ` under ${c.backend}` : ''
    return `${[projectPath(program, this.root), ...args].join(' ')}${backend}${c.test ? ` (${c.test})` : ''}`
  }

  /** Looks at the captures under way and says what there is to say. */
  poll(): void {
    const now = this.timing.now()
    const running = readCaptures(this.dir)
    const ids = new Set(running.map((c) => c.capture))
    for (const [id, { capture }] of this.shown) {
      if (ids.has(id)) continue
      this.log(`heapspec: ${this.describe(capture)} finished after ${Math.round((now - capture.startedAt) / 1000)} s`)
      this.shown.delete(id)
    }
    for (const c of running) {
      const elapsed = now - c.startedAt
      const seen = this.shown.get(c.capture)
      if (!seen && elapsed >= this.timing.after) {
        this.log(`heapspec: capturing ${this.describe(c)}: ${Math.round(elapsed / 1000)} s so far`)
        this.shown.set(c.capture, { capture: c, lastLine: now })
      } else if (seen && now - seen.lastLine >= this.timing.every) {
        this.log(`heapspec: still capturing ${this.describe(c)}: ${Math.round(elapsed / 1000)} s so far`)
        seen.lastLine = now
      }
    }
  }
}

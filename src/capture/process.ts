import { readdirSync, readFileSync } from 'node:fs'
import { execa, type Options, type ResultPromise } from 'execa'

/** Every process tree a capture has started and not yet reaped, so none outlives us. */
const liveTrees = new Set<number>()
let exitHookInstalled = false

/** The pids of every descendant of `root` (children, grandchildren, ...), read from /proc. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue // the process ended while we looked
    }
    // The command name may hold spaces and parentheses: the ppid follows the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    const list = children.get(ppid) ?? []
    list.push(Number(entry))
    children.set(ppid, list)
  }
  const found: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    for (const child of children.get(queue.pop()!) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

/** Kills `root` and everything below it with SIGKILL. Safe to call on a process that already ended. */
export function killTree(root: number): void {
  // Collect first: once the parent dies its children are reparented and can no longer be found.
  const pids = [root, ...descendants(root)]
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const pid of liveTrees) killTree(pid)
  })
}

/** How a supervised process ended. */
export interface Supervised {
  exitCode: number | undefined
  signal: string | undefined
  timedOut: boolean
  aborted: boolean
  stdout: string
  stderr: string
  /** What each buffered file descriptor carried, by number ('' where not buffered). */
  output: string[]
}

/** Options for `supervise`: execa's, plus a timeout and an abort signal that kill the whole tree. */
export interface SuperviseOptions extends Pick<Options, 'cwd' | 'env' | 'stdio' | 'buffer'> {
  timeoutMs: number | undefined
  signal: AbortSignal | undefined
  /** Called with the running child, to read its extra file descriptors. */
  onSpawn?: (child: ResultPromise) => void
  /**
   * On timeout, first ask the debugger to stop the program its own way (so it can still report
   * what leaked), and kill the tree only if it has not ended `graceMs` later.
   */
  interrupt?: { request: (pid: number) => void; graceMs: number }
}

/**
 * Runs a debugger process and waits for it. On timeout, abort or our own exit, the debugger and
 * every process below it (the program under test included) are killed: nothing outlives a run.
 */
export async function supervise(file: string, args: string[], options: SuperviseOptions): Promise<Supervised> {
  installExitHook()
  const child = execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    stdio: options.stdio,
    buffer: options.buffer ?? true,
    reject: false,
    stripFinalNewline: false,
    maxBuffer: 64 * 1024 * 1024,
  })
  const pid = child.pid
  if (pid !== undefined) liveTrees.add(pid)
  let timedOut = false
  let aborted = false
  const stop = (): void => {
    if (pid !== undefined) killTree(pid)
  }
  let grace: NodeJS.Timeout | undefined
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true
          if (options.interrupt && pid !== undefined) {
            options.interrupt.request(pid)
            grace = setTimeout(stop, options.interrupt.graceMs)
          } else {
            stop()
          }
        }, options.timeoutMs)
  const onAbort = (): void => {
    aborted = true
    stop()
  }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted) onAbort()
  try {
    options.onSpawn?.(child)
    const result = await child
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut,
      aborted,
      stdout: typeof result.stdout === 'string' ? result.stdout : '',
      stderr: typeof result.stderr === 'string' ? result.stderr : '',
      output: (result.stdio as unknown[]).map((text) => (typeof text === 'string' ? text : '')),
    }
  } finally {
    if (timer) clearTimeout(timer)
    if (grace) clearTimeout(grace)
    options.signal?.removeEventListener('abort', onAbort)
    // Once reaped, the pid may be reused: never signal it again. A debugger that exits kills the
    // program it started (gdb and valgrind both do), so the tree is gone with it.
    if (pid !== undefined) liveTrees.delete(pid)
  }
}

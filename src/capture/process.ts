import { readdirSync, readFileSync } from 'node:fs'
import { execa, type Options, type ResultPromise } from 'execa'
import { launcherPath } from './launcher.js'

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

/** Kills `root` and everything below it with SIGKILL, and returns their pids. Safe to call on a process that already ended. */
export function killTree(root: number): number[] {
  // Collect first: once the parent dies its children are reparented and can no longer be found.
  const pids = [root, ...descendants(root)]
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  return pids
}

/** True while `pid` runs (a zombie has ended). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/**
 * Waits (up to `ms`) until the killed pids have ended: the launcher dies at once, the debugger
 * and what it started a moment later, and a caller may look for them as soon as the run returns.
 */
async function awaitEnd(pids: number[], ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  while (pids.some(running) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const pid of liveTrees) killTree(pid)
  })
}

/**
 * The program's stdin, stdout and stderr: under 'inherit' heapspec's own three, so the program
 * reads and writes exactly what it would without heapspec; under 'pipe' its output is captured
 * and its stdin is /dev/null (a test runner's stdin is not the program's to read).
 */
export function programStdio(stdio: 'inherit' | 'pipe'): ['inherit' | 'ignore', 'inherit' | 'pipe', 'inherit' | 'pipe'] {
  return stdio === 'inherit' ? ['inherit', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe']
}

/** The launcher's one child, once it has forked it (a few milliseconds); the launcher's own pid if it never does. */
async function launchedChild(launcher: number): Promise<number> {
  for (let waited = 0; waited < 5000; waited += 2) {
    let children: string
    try {
      children = readFileSync(`/proc/${launcher}/task/${launcher}/children`, 'utf8').trim()
    } catch {
      return launcher // ended already
    }
    if (children !== '') return Number(children.split(' ')[0])
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  return launcher
}

/** How a supervised process ended. */
export interface Supervised {
  exitCode: number | undefined
  signal: string | undefined
  /** Stopped before its end, by the timeout or the `stop` signal (see `stoppedAfterMs`). */
  timedOut: boolean
  /** How long after its start the program was asked to stop, when it was. */
  stoppedAfterMs: number | undefined
  /** Stopped early and killed when it did not end within the interrupt's grace. */
  killedAfterGrace: boolean
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
  /** Aborting stops the program as the timeout does (its debugger still reports what it saw). */
  stop?: AbortSignal | undefined
  /** argv[0] of the process started: what the user typed for the program, not its resolved path. */
  argv0?: string
  /**
   * Descriptors made blocking for the process started, as a shell gives a program its streams:
   * Node makes a pipe behind heapspec's own stdio non-blocking once it opens it (see launcher.c).
   */
  blockingFds?: number[]
  /** Variables for the process started only, never for the launcher above it (LD_PRELOAD). */
  childEnv?: Record<string, string>
  /**
   * Called with the running child at once (its extra file descriptors must be read before execa
   * drains them), and the pid of the process started, soon (under the launcher, the launcher's
   * child: what vgdb attaches to).
   */
  onSpawn?: (child: ResultPromise, pid: Promise<number | undefined>) => void
  /**
   * On timeout, first ask the debugger to stop the program its own way (so it can still report
   * what leaked), and kill the tree only if it has not ended `graceMs` later.
   */
  interrupt?: { request: (pid: number, launched: boolean) => void; graceMs: number }
}

/**
 * Runs a debugger process (or the program itself) and waits for it. On timeout, abort or our own
 * exit, it and every process below it (the program under test included) are killed: nothing
 * outlives a run. It starts under heapspec's launcher (launcher.c) where one could be built, so
 * the orphans of the run (a child the program forked, also with setsid) are killed when it ends,
 * and everything goes with heapspec if heapspec itself is killed. The launcher passes heapspec's
 * requests on (see launcher.c), so `interrupt.request` signals its pid as it would the child's.
 */
export async function supervise(file: string, args: string[], options: SuperviseOptions): Promise<Supervised> {
  installExitHook()
  const launcher = await launcherPath()
  const childEnv = options.childEnv ?? {}
  const [command, commandArgs] = launcher
    ? [launcher, [...(options.argv0 !== undefined ? ['-a', options.argv0] : []), ...(options.blockingFds ?? []).flatMap((fd) => ['-b', String(fd)]), ...Object.entries(childEnv).flatMap(([k, v]) => ['-e', `${k}=${v}`]), '--', file, ...args]]
    : [file, args]
  const child = execa(command, commandArgs, {
    cwd: options.cwd,
    env: launcher ? options.env : { ...options.env, ...childEnv },
    ...(launcher || options.argv0 === undefined ? {} : { argv0: options.argv0 }),
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
  const killed: number[] = []
  const stop = (): void => {
    if (pid !== undefined) killed.push(...killTree(pid))
  }
  let grace: NodeJS.Timeout | undefined
  const started = Date.now()
  let stoppedAfterMs: number | undefined
  let killedAfterGrace = false
  const stopEarly = (afterMs = Math.round((Date.now() - started) / 100) * 100): void => {
    if (timedOut) return
    timedOut = true
    stoppedAfterMs = afterMs
    if (options.interrupt && pid !== undefined) {
      options.interrupt.request(pid, launcher !== undefined)
      grace = setTimeout(() => {
        killedAfterGrace = true
        stop()
      }, options.interrupt.graceMs)
    } else {
      stop()
    }
  }
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => stopEarly(options.timeoutMs), options.timeoutMs)
  const onStop = (): void => stopEarly()
  options.stop?.addEventListener('abort', onStop, { once: true })
  if (options.stop?.aborted) onStop()
  const onAbort = (): void => {
    aborted = true
    stop()
  }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted) onAbort()
  try {
    options.onSpawn?.(child, launcher && pid !== undefined ? launchedChild(pid) : Promise.resolve(pid))
    const result = await child
    await awaitEnd(killed)
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut,
      stoppedAfterMs,
      killedAfterGrace,
      aborted,
      stdout: typeof result.stdout === 'string' ? result.stdout : '',
      stderr: typeof result.stderr === 'string' ? result.stderr : '',
      output: (result.stdio as unknown[]).map((text) => (typeof text === 'string' ? text : '')),
    }
  } finally {
    if (timer) clearTimeout(timer)
    if (grace) clearTimeout(grace)
    options.signal?.removeEventListener('abort', onAbort)
    options.stop?.removeEventListener('abort', onStop)
    // Once reaped, the pid may be reused: never signal it again. A debugger that exits kills the
    // program it started (gdb and valgrind both do), and the launcher what the program left.
    if (pid !== undefined) liveTrees.delete(pid)
  }
}

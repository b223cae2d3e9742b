import { readdir } from 'node:fs/promises'

/**
 * The run's warning for `count` forks of the program that did not exec another program. memcheck
 * follows a fork and checks the child at its end (unless it execs first), under the child's own
 * process id; heapspec checks the process it started, so a leaking child would pass in silence.
 */
export function unfollowedForksWarning(count: number): string {
  return `the program forked ${count === 1 ? 'a process' : `${count} processes`} that did not exec another program: heapspec checks the process it started, not its forks, whose leaks memcheck reports too (under their own process ids)`
}

/**
 * How many of the program's forks did not exec another program: each such child leaves a file
 * named forked-PID in the run's directory, removed at its exec (the preload interposer's
 * lifecycle.c, the gdb script's forks.py).
 */
export async function unexecedForks(runDir: string): Promise<number> {
  return (await readdir(runDir).catch(() => [])).filter((f) => f.startsWith('forked-')).length
}

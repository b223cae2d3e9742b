import { readFileSync, statSync } from 'node:fs'

/** The C compilers tried for what heapspec builds (the interposer, the launcher), in order: $CC first when set. */
export function compilers(): string[] {
  const fromEnv = process.env.CC?.trim()
  return [...(fromEnv ? [fromEnv] : []), 'cc', 'gcc', 'clang']
}

let libc: string | undefined | null = null

/**
 * The C library this process loaded, by its real path (from /proc/self/maps): the one a program
 * run from here most likely loads too. Undefined where /proc does not say.
 */
export function hostLibc(): string | undefined {
  if (libc !== null) return libc
  try {
    libc = /\s(\/\S*\/libc\.so\.6)$/m.exec(readFileSync('/proc/self/maps', 'latin1'))?.[1]
  } catch {
    libc = undefined
  }
  return libc
}

/**
 * Which C library builds are for, as part of a cache key: a cache shared between machines (a
 * mounted home) must not hand one glibc another's build. The library's path, size and time of
 * change tell one from another; glibc's version string (process.report) costs 20 ms a run.
 */
export function libcIdentity(): string {
  const path = hostLibc()
  if (!path) return ''
  try {
    const st = statSync(path)
    return `${path}:${st.size}:${st.mtimeMs}`
  } catch {
    return path
  }
}

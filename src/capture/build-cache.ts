import { constants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { CannotStartError } from '../errors.js'

/** The C compilers tried, in order: $CC first when set. */
export function compilers(): string[] {
  const fromEnv = process.env.CC?.trim()
  return [...(fromEnv ? [fromEnv] : []), 'cc', 'gcc', 'clang']
}

/** Where heapspec keeps what it compiles (the interposer, the launcher): $XDG_CACHE_HOME/heapspec or ~/.cache/heapspec, else the temp dir. */
export async function cacheDir(): Promise<string> {
  const xdg = process.env.XDG_CACHE_HOME
  // A user id with no passwd entry (docker run --user 1234) has no home to look up: os.userInfo()
  // throws there, and os.homedir() too when HOME is unset.
  const home = homeDirectory()
  const candidates = [
    ...(xdg ? [join(xdg, 'heapspec')] : home ? [join(home, '.cache', 'heapspec')] : []),
    join(tmpdir(), `heapspec-${process.getuid?.() ?? 'user'}`),
  ]
  for (const dir of candidates) {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      await access(dir, constants.W_OK)
      return dir
    } catch {
      // not writable here: the next one
    }
  }
  throw new CannotStartError(`heapspec: no writable cache directory to build its helpers in (tried ${candidates.join(', ')}). Set XDG_CACHE_HOME to a writable directory.`)
}

function homeDirectory(): string | undefined {
  try {
    return homedir() || undefined
  } catch {
    return undefined
  }
}

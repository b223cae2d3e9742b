import { readFileSync } from 'node:fs'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A run directory's name: `<prefix><pid>-<start time>-XXXXXX`, so a later run can tell whether its owner still runs. */
const RUN_DIR = /^(heapspec-(?:valgrind-)?)(\d+)-(\d+)-[A-Za-z0-9]{6}$/

/** A process's start time (clock ticks since boot, /proc/PID/stat field 22), or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/**
 * Removes the run directories in `base` whose heapspec process is gone (SIGKILLed, or the machine
 * lost power): a run cleans its own directory when it ends, and a killed one cannot. The pid and
 * its start time together name the owner, so a reused pid does not keep a dead run's directory.
 */
async function removeStale(base: string): Promise<void> {
  let entries: string[]
  try {
    entries = await readdir(base)
  } catch {
    return
  }
  const uid = process.getuid?.()
  for (const entry of entries) {
    const match = RUN_DIR.exec(entry)
    if (!match || startTime(Number(match[2])) === match[3]) continue
    const path = join(base, entry)
    try {
      if (uid !== undefined && (await stat(path)).uid !== uid) continue // another user's
      await rm(path, { recursive: true, force: true })
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
}

/** A new temporary directory for one capture (`prefix` 'heapspec-' or 'heapspec-valgrind-'), after cleaning those of dead runs. */
export async function makeRunDir(prefix: 'heapspec-' | 'heapspec-valgrind-', base = tmpdir()): Promise<string> {
  await removeStale(base)
  return mkdtemp(join(base, `${prefix}${process.pid}-${startTime(process.pid) ?? 0}-`))
}

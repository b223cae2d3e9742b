import { createHash, randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { access, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { packageRoot } from '../package-root.js'
import { cacheDir, compilers } from './build-cache.js'

/** The launcher's source ships under src/ (a build under dist/ has no copy). */
function sourcePath(): string {
  return join(packageRoot(), 'src', 'capture', 'launcher.c')
}

const CFLAGS = ['-O2', '-w']

let building: Promise<string | undefined> | undefined

/**
 * heapspec-launch (launcher.c), compiled once into the cache like the interposer: the supervisor
 * every capture's process tree starts under (a child subreaper with a parent-death signal, so no
 * process of a run outlives it or heapspec), and gdb's exec-wrapper for the program's argv[0].
 * Undefined when no C compiler can build it: runs then start directly, as before (what the
 * program forks may then outlive it, and under gdb its argv[0] is absolute).
 */
export function launcherPath(): Promise<string | undefined> {
  building ??= build()
  return building
}

async function build(): Promise<string | undefined> {
  let source: Buffer
  try {
    source = await readFile(sourcePath())
  } catch {
    return undefined
  }
  const key = createHash('sha256').update(source).update(JSON.stringify([CFLAGS, process.arch])).digest('hex').slice(0, 16)
  let dir: string
  try {
    dir = await cacheDir()
  } catch {
    return undefined
  }
  const launcher = join(dir, `heapspec-launch-${key}`)
  try {
    await access(launcher, constants.X_OK)
    return launcher
  } catch {
    // not built yet
  }
  // Concurrent first uses each compile to a name of their own and rename it into place (atomic).
  const temporary = `${launcher}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  for (const cc of compilers()) {
    const result = await execa(cc, [...CFLAGS, '-o', temporary, sourcePath()], { reject: false, timeout: 120_000 })
    if (result.failed && result.code === 'ENOENT') continue
    if (result.exitCode !== 0) break
    await rename(temporary, launcher)
    return launcher
  }
  await rm(temporary, { force: true })
  return undefined
}

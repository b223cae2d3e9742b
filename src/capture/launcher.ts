import { createHash } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { packageRoot } from '../package-root.js'
import { compilers } from './build-cache.js'
import { buildDirectory, cacheCandidates, cachedLibrary, chooseCacheDir, installLibrary, verify, type VerifiedLibrary } from './preload/interposer-cache.js'

/** The launcher's source ships under src/ (a build under dist/ has no copy). */
function sourcePath(): string {
  return join(packageRoot(), 'src', 'capture', 'launcher.c')
}

const CFLAGS = ['-O2', '-w']

let building: Promise<VerifiedLibrary | undefined> | undefined

/**
 * heapspec-launch (launcher.c), compiled once into the cache like the interposer, and kept and
 * checked as it is (a private directory, a content hash recorded beside it and checked before each
 * use): the supervisor every capture's process tree starts under (a child subreaper with a
 * parent-death signal, so no process of a run outlives it or heapspec), and gdb's exec-wrapper for
 * the program's argv[0]. Undefined when no C compiler can build it: runs then start directly, as
 * before (what the program forks may then outlive it, and under gdb its argv[0] is absolute).
 */
export async function launcherPath(): Promise<string | undefined> {
  // one built or found just now was checked then; one kept from an earlier run is checked again
  const fresh = building === undefined
  building ??= build()
  const launcher = await building
  if (launcher === undefined || fresh || (await verify(launcher))) return launcher?.path
  // changed since it was built (something else writes to the cache): built again, once
  building = build()
  return (await building)?.path
}

function launcherKey(source: Buffer): string {
  return createHash('sha256').update(source).update(JSON.stringify([CFLAGS, process.arch])).digest('hex').slice(0, 16)
}

async function build(): Promise<VerifiedLibrary | undefined> {
  let source: Buffer
  try {
    source = await readFile(sourcePath())
  } catch {
    return undefined
  }
  const key = launcherKey(source)
  let cache: string
  try {
    cache = (await chooseCacheDir(cacheCandidates())).dir
  } catch {
    return undefined
  }
  const cached = await cachedLibrary(cache, key, 'launch')
  if (cached) return cached
  const work = await buildDirectory(cache)
  try {
    const built = join(work, 'heapspec-launch')
    for (const cc of compilers()) {
      const result = await execa(cc, [...CFLAGS, '-o', built, sourcePath()], { reject: false, timeout: 120_000 })
      if (result.failed && result.code === 'ENOENT') continue
      if (result.exitCode !== 0) return undefined
      return await installLibrary(cache, key, work, built, 'launch')
    }
    return undefined
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

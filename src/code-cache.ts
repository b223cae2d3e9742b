/**
 * V8's code cache for the CLI's bundle: compiling the bundle's half a megabyte was a fifth of what
 * a plain `heapspec run` costs over Node's own start (Node 20 keeps no code cache for user code).
 * The cache is kept in heapspec's private cache directory, under a name holding a hash of the
 * bundle's content and Node's version: V8 checks only the source's length, its own version and its
 * flags before it uses a cache, so a cache of another bundle of the same length would run that
 * bundle's code. It is only read from a private file in a private directory (interposer-cache.ts),
 * as the interposer is: what it holds runs as heapspec.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Script } from 'node:vm'
import { cacheCandidates, readKeptBytes, unsafeDirectory, writeKept } from './capture/preload/interposer-cache.js'

/** The first cache directory that exists and is private, as chooseCacheDir would pick it; none is made here. */
function privateCacheDir(): string | undefined {
  for (const dir of cacheCandidates()) {
    try {
      if (unsafeDirectory(dir) === undefined) return dir
    } catch {
      // not there (yet): the preload backend makes it at its first run
    }
  }
  return undefined
}

/**
 * Runs the CommonJS bundle at `file` as Node's loader would (the same wrapper's arguments), with
 * its code cache when one is kept, and keeps a new one at exit when there was none or V8 refused
 * it: made then, it holds every function the run compiled, not only the top level.
 */
export function runWithCodeCache(file: string): void {
  const bytes = readFileSync(file)
  const dir = privateCacheDir()
  const cacheFile = dir && join(dir, `heapspec-cli-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}-${process.version}-${process.arch}.v8`)
  const cachedData = cacheFile ? readKeptBytes(cacheFile) : undefined
  // the wrapper goes on the first line, so line numbers stay the bundle's; a #! line is no JavaScript there
  const source = bytes.toString('utf8').replace(/^#!.*/, '')
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, ...(cachedData ? { cachedData } : {}) })
  if (cacheFile && (!cachedData || script.cachedDataRejected)) process.once('exit', () => writeKept(cacheFile, script.createCachedData()))
  const module = { exports: {} }
  ;(script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file))
}

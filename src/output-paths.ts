import { accessSync, constants, mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { BadOptionError } from './errors.js'

/** Kernel file systems: writing a report there fails or does something else entirely. */
const KERNEL_FILE_SYSTEMS = ['/proc', '/sys']

function refuseKernelPath(flag: string, path: string, absolute: string): void {
  if (KERNEL_FILE_SYSTEMS.some((root) => absolute === root || absolute.startsWith(`${root}/`))) {
    throw new BadOptionError(`heapspec: ${flag} ${path} is inside ${absolute.split('/')[1] === 'proc' ? '/proc' : '/sys'}, a kernel file system. Give a path in an ordinary directory.`)
  }
}

/** The path's stat, or undefined when it cannot be had (missing, mostly). */
function statIfAny(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK)
    return true
  } catch {
    return false
  }
}

/**
 * Checks, before the program runs, that a file heapspec writes afterwards (`--json`, `--log-file`)
 * can be written: its directory exists and is writable, and it is not a directory itself.
 * Returns the absolute path.
 */
export function checkOutputFile(flag: string, path: string, cwd = process.cwd()): string {
  const absolute = resolve(cwd, path)
  refuseKernelPath(flag, path, absolute)
  // not there yet: then its directory must be
  const stat = statIfAny(absolute)
  if (stat?.isDirectory()) throw new BadOptionError(`heapspec: ${flag} ${path} is a directory. Name a file (${flag} ${path.replace(/\/$/, '')}/heapspec.json).`)
  if (stat && !writable(absolute)) throw new BadOptionError(`heapspec: ${flag} ${path} is not writable. Check its permissions or name another file.`)
  if (!stat) {
    const dir = dirname(absolute)
    const dirStat = statIfAny(dir)
    if (!dirStat) throw new BadOptionError(`heapspec: ${flag} ${path}: the directory ${dir} does not exist. Create it first (mkdir -p ${dir}).`)
    if (!dirStat.isDirectory()) throw new BadOptionError(`heapspec: ${flag} ${path}: ${dir} is not a directory. Name a file in a directory.`)
    if (!writable(dir)) throw new BadOptionError(`heapspec: ${flag} ${path}: the directory ${dir} is not writable. Check its permissions or name another file.`)
  }
  return absolute
}

/**
 * Makes the directory `--out` writes into (with its parents), before the program runs, and checks
 * that it is a writable directory. Returns the absolute path.
 */
export function prepareOutputDir(flag: string, path: string, cwd = process.cwd()): string {
  const absolute = resolve(cwd, path)
  refuseKernelPath(flag, path, absolute)
  // missing: made below
  const stat = statIfAny(absolute)
  if (stat && !stat.isDirectory()) throw new BadOptionError(`heapspec: ${flag} ${path} is a file, not a directory. Name a directory (it is created when missing).`)
  if (!stat) {
    try {
      mkdirSync(absolute, { recursive: true })
    } catch (error) {
      throw new BadOptionError(`heapspec: ${flag} ${path}: cannot create the directory (${(error as NodeJS.ErrnoException).code ?? String(error)}). Name a directory you can write.`, { cause: error })
    }
  }
  if (!writable(absolute)) throw new BadOptionError(`heapspec: ${flag} ${path} is not writable. Check its permissions or name another directory.`)
  return absolute
}

/**
 * The source lines the HTML report quotes, read only from the project's own source files: a saved
 * run names files as another machine saw them, so a frame's `file` may point anywhere
 * (`../../etc/passwd`, `/proc/self/environ`, a key file, a FIFO). Only a regular file under the
 * project root, reached without leaving it through `..` or a symbolic link, named like source code
 * and outside hidden directories, is read, and only up to a size limit.
 */
import { realpathSync } from 'node:fs'
import { extname, isAbsolute, relative, resolve, sep } from 'node:path'
import { readRegularFile } from './bounded-read.js'

/** The largest source file quoted from. */
export const MAX_SOURCE_BYTES = 4 * 1024 * 1024

/** Extensions of the source files native code is compiled from (C, C++, Objective-C, assembly, CUDA, Rust, Zig, Fortran, Go, D). */
const SOURCE_EXTENSIONS = new Set(
  ['c', 'h', 'cc', 'cp', 'cpp', 'cxx', 'c++', 'hh', 'hpp', 'hxx', 'h++', 'inl', 'ipp', 'tpp', 'tcc', 'txx', 'ixx', 'cppm', 'm', 'mm', 's', 'asm', 'cu', 'cuh', 'rs', 'zig', 'f', 'for', 'f90', 'f95', 'f03', 'f08', 'go', 'd'].map((e) => `.${e}`),
)

/** Whether `path` lies inside `dir` (both absolute and resolved). */
function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path)
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel)
}

/**
 * The project file a report may quote for `file` (as a saved run names it, relative to `root` or
 * absolute), or undefined when it is not one of the project's source files.
 */
export function projectSourcePath(root: string, file: string): string | undefined {
  if (file.includes('\0')) return undefined
  const realRoot = realpathSync(root)
  const named = resolve(root, file)
  if (!inside(named, resolve(root)) && !inside(named, realRoot)) return undefined
  let real: string
  try {
    real = realpathSync(named)
  } catch {
    return undefined
  }
  if (!inside(real, realRoot)) return undefined // a symbolic link out of the project
  if (!SOURCE_EXTENSIONS.has(extname(real).toLowerCase())) return undefined
  if (relative(realRoot, real).split(sep).some((part) => part.startsWith('.'))) return undefined
  // a project root of / would hold the kernel's files too
  if (/^\/(proc|sys|dev)(\/|$)/.test(real)) return undefined
  return real
}

/** The text of a project source file a saved run names, or undefined when it may not be read (see projectSourcePath). */
export function readProjectSource(root: string, file: string): string | undefined {
  const path = projectSourcePath(root, file)
  if (path === undefined) return undefined
  try {
    return readRegularFile(path, MAX_SOURCE_BYTES, { noFollow: true }).toString('utf8')
  } catch {
    return undefined
  }
}

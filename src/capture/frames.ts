import { isAbsolute, join, normalize, relative, sep } from 'node:path'

/**
 * A source path as reports show it: relative to the run's working directory when the file is
 * inside it (so a CI annotation can point at it), absolute otherwise.
 */
export function sourcePath(dir: string | null, file: string, cwd: string): string {
  const full = isAbsolute(file) ? file : dir ? join(dir, file) : file
  // relative to a build directory we do not know (glibc's ./nptl/./nptl/...): tidy, no more
  if (!isAbsolute(full)) return undoubled(normalize(full))
  const rel = relative(cwd, full)
  return rel.startsWith('..') || isAbsolute(rel) || rel === '' ? full : rel.split(sep).join('/')
}

/**
 * A relative path whose leading directories repeat (glibc's debug info joins its build directory
 * `./nptl` with `./nptl/pthread_create.c`): the repetition once. `nptl/nptl/pthread_create.c` is
 * `nptl/pthread_create.c`, the file memcheck names `pthread_create.c`.
 */
function undoubled(path: string): string {
  const parts = path.split('/')
  for (let k = 1; 2 * k < parts.length; k++) {
    if (parts.slice(0, k).join('/') === parts.slice(k, 2 * k).join('/')) return parts.slice(k).join('/')
  }
  return path
}

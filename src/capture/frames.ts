import { isAbsolute, join, normalize, relative, sep } from 'node:path'

/**
 * A source path as reports show it: relative to the run's working directory when the file is
 * inside it (so a CI annotation can point at it), absolute otherwise.
 */
export function sourcePath(dir: string | null, file: string, cwd: string): string {
  const full = isAbsolute(file) ? file : dir ? join(dir, file) : file
  // relative to a build directory we do not know (glibc's ./nptl/./nptl/...): tidy, no more
  if (!isAbsolute(full)) return normalize(full)
  const rel = relative(cwd, full)
  return rel.startsWith('..') || isAbsolute(rel) || rel === '' ? full : rel.split(sep).join('/')
}

import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BadOptionError, describeValue } from '../errors.js'
import { mangledPatterns, parseSuppressions, withDemangled, type Suppression } from '../model/suppressions.js'
import { packageRoot } from '../package-root.js'
import { execaSync } from 'execa'

/** heapspec's default suppressions (glibc's and libstdc++'s bookkeeping), applied on every backend. */
export function defaultSuppressionFile(): string {
  return join(packageRoot(), 'src', 'suppressions', 'glibc.supp')
}

/** A suppression file's path, checked to be a readable file; a bad one is a bad option, before anything runs. */
export function checkSuppressionFile(file: string, cwd: string): string {
  const path = resolve(cwd, file)
  let problem: string | undefined
  try {
    if (!statSync(path).isFile()) problem = 'it is not a file'
    else accessSync(path, constants.R_OK)
  } catch (error) {
    problem ??= (error as NodeJS.ErrnoException).code === 'ENOENT' ? `no such file (looked for ${path})` : 'it cannot be read'
  }
  if (problem) {
    throw new BadOptionError(
      `Expected the \`suppressions\` option to list memcheck suppression files, got ${describeValue(file)}: ${problem}. Check the path (relative paths start from ${cwd}).`,
    )
  }
  return path
}

/** Demangles C++ names with c++filt, one call for all; without c++filt, none (the mangled names still match memcheck's way). */
function demangled(names: string[]): Map<string, string> {
  if (names.length === 0) return new Map()
  const result = execaSync('c++filt', [], { input: names.join('\n') + '\n', reject: false, timeout: 30_000 })
  if (result.exitCode !== 0) return new Map()
  const out = String(result.stdout).split('\n')
  return new Map(names.map((name, i) => [name, out[i] || name]))
}

/**
 * The suppressions of the default file and of `files` (absolute paths), in that order, their
 * mangled C++ function names also matching the demangled names heapspec's frames carry.
 */
export function loadSuppressions(files: readonly string[]): Suppression[] {
  const suppressions = [defaultSuppressionFile(), ...files].flatMap((file) => parseSuppressions(readFileSync(file, 'utf8'), file))
  return withDemangled(suppressions, demangled(mangledPatterns(suppressions)))
}

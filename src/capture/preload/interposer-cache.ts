/**
 * Where the preload backend keeps the interposer it compiled, and how it makes sure that what it
 * loads into the user's program is what it built: a directory of the user's own that no one else
 * can write (checked without following symbolic links, its ancestors too), a build in a private
 * directory renamed into place, and a manifest beside the library with its content hash, checked
 * before every use. Anything else found there is never loaded.
 */
import { createHash, randomBytes } from 'node:crypto'
import { lstatSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs'
import { chmod, lstat, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, isAbsolute, join, parse, resolve } from 'node:path'
import { CannotStartError } from '../../errors.js'

/** A built interposer and the hash of its content, as recorded when it was built. */
export interface VerifiedLibrary {
  path: string
  sha256: string
}

/** The cache directory chosen, and why the ones before it were not. */
export interface CacheChoice {
  dir: string
  /** One line per candidate directory refused: whose it is, its mode, what to do. */
  refusals: string[]
  /** True for a private directory made for this process alone (removed when it exits). */
  temporary: boolean
}

/** The manifest's shape: written by heapspec beside each library it installs. */
interface Manifest {
  heapspecInterposer: 1
  library: string
  sha256: string
}

/** What heapspec builds into the cache: the interposer, and the launcher runs start under. */
export type CachedKind = 'preload' | 'launch'

/** The name of a build of `kind` (the interposer is a shared object, the launcher a program). */
const BUILD_NAME: Record<CachedKind, RegExp> = {
  preload: /^heapspec-preload-[0-9a-f]{16}-[0-9a-f]{16}\.so$/,
  launch: /^heapspec-launch-[0-9a-f]{16}-[0-9a-f]{16}$/,
}

/**
 * Where builds are kept: $XDG_CACHE_HOME/heapspec or ~/.cache/heapspec, else the temp dir. A
 * relative XDG_CACHE_HOME is ignored, as the XDG spec says: LD_PRELOAD would read it from the
 * program's working directory. A user id with no passwd entry (docker run --user 1234) has no home
 * to look up (os.homedir() throws when HOME is unset too): then the temp dir alone.
 */
export function cacheCandidates(): string[] {
  const xdg = process.env.XDG_CACHE_HOME
  let home: string | undefined
  try {
    home = homedir() || undefined
  } catch {
    home = undefined
  }
  const first = xdg && isAbsolute(xdg) ? [join(xdg, 'heapspec')] : home ? [join(home, '.cache', 'heapspec')] : []
  return [...first, join(tmpdir(), `heapspec-${uid()}`)].map((dir) => resolve(dir))
}

function uid(): number {
  return process.getuid?.() ?? 0
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * Why an ancestor of `dir` would let someone else replace `dir`, or undefined: each directory
 * above it must belong to the user or root, and be writable by others only when sticky (as /tmp is).
 */
function unsafeAncestor(dir: string): string | undefined {
  let current = realpathSync(dirname(dir))
  for (;;) {
    const st = statSync(current)
    if (st.uid !== uid() && st.uid !== 0) return `${current} above it belongs to uid ${st.uid} (mode ${octal(st.mode)})`
    if (st.mode & 0o022 && !(st.mode & 0o1000)) return `${current} above it can be written by others (owner uid ${st.uid}, mode ${octal(st.mode)})`
    if (current === parse(current).root) return undefined
    current = dirname(current)
  }
}

/** Why `dir` (which exists) is not a private directory of the user's, or undefined when it is; throws when it cannot be read. */
export function unsafeDirectory(dir: string): string | undefined {
  const st = lstatSync(dir)
  const found = `owner uid ${st.uid}, mode ${octal(st.mode)}`
  if (st.isSymbolicLink()) return `it is a symbolic link (to ${linkTarget(dir)}), which heapspec does not follow`
  if (!st.isDirectory()) return `it is not a directory (${found})`
  if (st.uid !== uid()) return `it belongs to someone else (${found})`
  if (st.mode & 0o077) return `others can use it (${found})`
  return unsafeAncestor(dir)
}

function linkTarget(path: string): string {
  try {
    return readlinkSync(path)
  } catch {
    return '?'
  }
}

/** A file heapspec may trust in its private directory: a regular file of the user's that only the user can write. */
function privateFile(st: Stats): boolean {
  return st.isFile() && st.uid === uid() && (st.mode & 0o022) === 0
}

/** The text of a file heapspec kept there (a privateFile, not followed if a link), or undefined. */
export function readKept(path: string): string | undefined {
  return readKeptBytes(path)?.toString('utf8')
}

/** The bytes of a file heapspec kept there, as readKept. */
export function readKeptBytes(path: string): Buffer | undefined {
  try {
    return privateFile(lstatSync(path)) ? readFileSync(path) : undefined
  } catch {
    return undefined
  }
}

/** Keeps `text` at `path`, by an atomic rename of a private file beside it (concurrent runs: the last one wins); false when it cannot. */
export function writeKept(path: string, text: string | Uint8Array): boolean {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' })
    renameSync(temporary, path)
    return true
  } catch {
    return false
  }
}

/** The refusal line for one candidate directory. */
function refusal(dir: string, reason: string): string {
  return `heapspec: not using ${dir} for the preload backend's interposer: ${reason}; it must be a directory of yours (uid ${uid()}) with mode 0700. Remove it, or set XDG_CACHE_HOME to a directory of your own.`
}

const temporaries: string[] = []

/**
 * The first candidate that is (or can be made) a private directory of the user's, else a fresh
 * private directory under the temp dir for this process alone. A candidate that cannot be created
 * (an unwritable home) is passed over quietly; one that exists and is not private is refused with
 * a line saying why, and never used.
 */
export async function chooseCacheDir(candidates: string[]): Promise<CacheChoice> {
  const refusals: string[] = []
  for (const dir of candidates) {
    try {
      await mkdir(dirname(dir), { recursive: true, mode: 0o700 })
      await mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error
      })
    } catch {
      continue // cannot be made here (a read-only home): the next one
    }
    let reason: string | undefined
    try {
      reason = unsafeDirectory(dir)
    } catch (error) {
      reason = `it cannot be checked (${(error as Error).message})`
    }
    if (reason === undefined) return { dir, refusals, temporary: false }
    refusals.push(refusal(dir, reason))
  }
  // mkdtemp makes a new directory of mode 0700 under a name no one could have made before
  let dir: string
  try {
    dir = await mkdtemp(join(tmpdir(), 'heapspec-preload-'))
  } catch (error) {
    throw new CannotStartError(`heapspec: the preload backend has nowhere private to build its interposer (${(error as Error).message}). Set XDG_CACHE_HOME or TMPDIR to a directory of your own, or use --backend gdb.`, { cause: error })
  }
  const reason = unsafeAncestor(dir)
  if (reason !== undefined) {
    await rm(dir, { recursive: true, force: true })
    throw new CannotStartError(`heapspec: the preload backend has nowhere private to build its interposer: ${reason}. Set TMPDIR to a directory of your own, or use --backend gdb.`)
  }
  if (temporaries.length === 0) process.once('exit', () => temporaries.forEach((d) => rmSync(d, { recursive: true, force: true })))
  temporaries.push(dir)
  return { dir, refusals, temporary: true }
}

/** A private directory inside the cache to build in: renames from it into the cache are atomic. */
export function buildDirectory(cache: string): Promise<string> {
  return mkdtemp(join(cache, '.build-'))
}

function manifestPath(cache: string, key: string, kind: CachedKind): string {
  return join(cache, `heapspec-${kind}-${key}.json`)
}

/** Whether the library is still what heapspec built: a private regular file with the recorded content. */
export async function verify(library: VerifiedLibrary): Promise<boolean> {
  try {
    if (!privateFile(await lstat(library.path))) return false
    return sha256(await readFile(library.path)) === library.sha256
  } catch {
    return false
  }
}

/**
 * The library installed in the cache for `key`, when its manifest (a private file heapspec wrote)
 * names one whose content has the recorded hash; undefined otherwise (then it is built again).
 */
export async function cachedLibrary(cache: string, key: string, kind: CachedKind = 'preload'): Promise<VerifiedLibrary | undefined> {
  const manifest = manifestPath(cache, key, kind)
  try {
    if (!privateFile(await lstat(manifest))) return undefined
    const data = JSON.parse(await readFile(manifest, 'utf8')) as Partial<Manifest>
    if (data.heapspecInterposer !== 1 || typeof data.library !== 'string' || !BUILD_NAME[kind].test(data.library) || typeof data.sha256 !== 'string') return undefined
    const library = { path: join(cache, data.library), sha256: data.sha256 }
    return (await verify(library)) ? library : undefined
  } catch {
    return undefined
  }
}

/**
 * Moves a library built in `buildDir` into the cache under a name holding its content hash, then
 * records that hash in the key's manifest, each by an atomic rename: a reader sees the old pair or
 * the new one, and concurrent builders of the same source write the same bytes under the same name.
 */
export async function installLibrary(cache: string, key: string, buildDir: string, built: string, kind: CachedKind = 'preload'): Promise<VerifiedLibrary> {
  // only the user may write what is loaded into their programs, whatever their umask
  await chmod(built, 0o755)
  const hash = sha256(await readFile(built))
  const library = { path: join(cache, `heapspec-${kind}-${key}-${hash.slice(0, 16)}${kind === 'preload' ? '.so' : ''}`), sha256: hash }
  await rename(built, library.path)
  const manifest = join(buildDir, 'manifest.json')
  await writeFile(manifest, JSON.stringify({ heapspecInterposer: 1, library: parse(library.path).base, sha256: hash } satisfies Manifest) + '\n', { mode: 0o600 })
  await rename(manifest, manifestPath(cache, key, kind))
  return library
}

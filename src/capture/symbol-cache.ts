import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { cacheCandidates, chooseCacheDir, readKept, writeKept } from './preload/interposer-cache.js'

/** One answer kept: the function, source file and line of a file address. */
export interface CachedSymbol {
  fn: string | null
  file: string | null
  line: number | null
}

/** The shape of one object's file of answers. */
interface SymbolFile {
  heapspecSymbols: 1
  identity: string
  /** By file address in hex: [fn, file, line]. */
  symbols: Record<string, [string | null, string | null, number | null]>
}

/** Past this many answers an object's file is not grown further (each run reads it whole). */
const MOST_KEPT = 1_000_000

interface Loaded {
  path: string
  identity: string
  symbols: Map<number, CachedSymbol>
  added: boolean
}

/**
 * What the symbolizer answered in earlier runs, kept per object file in heapspec's private cache
 * directory (the interposer's, with its checks: a directory of the user's own, files only the user
 * can write): a run whose every address was answered before starts no symbolizer at all (loading
 * LLVM and libc's debug info cost a short run ~0.08 s). An object is known by its real path,
 * device, inode, size and modification time, and those of its separate debug files (by build id
 * and by path): a rebuilt program, or one whose debug info was installed since, is another object.
 */
export class SymbolCache {
  /** By the path asked about, and by the file of answers. */
  private readonly objects = new Map<string, Loaded | null>()
  private readonly files = new Map<string, Loaded>()

  private constructor(private readonly dir: string) {}

  /** The cache in heapspec's cache directory; undefined where there is only a private one for this process. */
  static async open(): Promise<SymbolCache | undefined> {
    const choice = await chooseCacheDir(cacheCandidates())
    return choice.temporary ? undefined : new SymbolCache(choice.dir)
  }

  /** Whether answers for the object at `path` were kept by an earlier run. */
  knows(path: string): boolean {
    return (this.load(path)?.symbols.size ?? 0) > 0
  }

  /** The answer kept for a file address of the object at `path`. */
  get(path: string, address: number): CachedSymbol | undefined {
    return this.load(path)?.symbols.get(address)
  }

  /** Keeps an answer. */
  set(path: string, address: number, symbol: CachedSymbol): void {
    const object = this.load(path)
    if (!object || object.symbols.size >= MOST_KEPT) return
    object.symbols.set(address, symbol)
    object.added = true
  }

  /** Writes each object's answers that grew, each by an atomic rename (concurrent runs: the last one wins). */
  save(): void {
    for (const object of this.files.values()) {
      if (!object.added) continue
      const symbols: SymbolFile['symbols'] = {}
      for (const [address, s] of object.symbols) symbols[address.toString(16)] = [s.fn, s.file, s.line]
      // a cache that cannot be written costs the next run its symbolizer, nothing more
      if (writeKept(object.path, JSON.stringify({ heapspecSymbols: 1, identity: object.identity, symbols } satisfies SymbolFile))) object.added = false
    }
  }

  private load(path: string): Loaded | null {
    let object = this.objects.get(path)
    if (object !== undefined) return object
    object = null
    try {
      const real = realpathSync(path)
      const st = statSync(real)
      const identity = JSON.stringify([real, st.dev, st.ino, st.size, st.mtimeMs, ...debugFiles(real).map(fileStamp)])
      const file = join(this.dir, `heapspec-symbols-${createHash('sha256').update(identity).digest('hex').slice(0, 16)}.json`)
      // one object named two ways (/lib and /usr/lib) is one file of answers
      object = this.files.get(file) ?? { path: file, identity, symbols: readSymbols(file, identity), added: false }
      this.files.set(file, object)
    } catch {
      // an object that cannot be looked at is symbolized afresh each run
    }
    this.objects.set(path, object)
    return object
  }
}

/** Where a symbolizer looks for an object's separate debug info (Debian's layout): by build id, and by path. */
function debugFiles(real: string): string[] {
  const files = [`/usr/lib/debug${real}.debug`]
  const id = buildId(real)
  if (id) files.push(`/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`)
  return files
}

/** A file's size and modification time, or null: debug info installed later makes the object's answers new ones. */
function fileStamp(path: string): [number, number] | null {
  try {
    const st = statSync(path)
    return [st.size, st.mtimeMs]
  } catch {
    return null
  }
}

/** An ELF file's GNU build id (its NT_GNU_BUILD_ID note, in hex), read from its section headers. */
function buildId(path: string): string | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    const read = (at: number, length: number): Buffer => {
      const buffer = Buffer.alloc(length)
      return buffer.subarray(0, readSync(fd, buffer, 0, length, at))
    }
    const header = read(0, 64)
    if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return undefined
    const shoff = Number(header.readBigUInt64LE(0x28))
    const shentsize = header.readUInt16LE(0x3a)
    const sections = read(shoff, shentsize * header.readUInt16LE(0x3c))
    for (let sh = 0; sh + shentsize <= sections.length; sh += shentsize) {
      if (sections.readUInt32LE(sh + 4) !== 7 /* SHT_NOTE */) continue
      const notes = read(Number(sections.readBigUInt64LE(sh + 0x18)), Math.min(Number(sections.readBigUInt64LE(sh + 0x20)), 4096))
      for (let at = 0; at + 12 <= notes.length; ) {
        const [name, desc, type] = [notes.readUInt32LE(at), notes.readUInt32LE(at + 4), notes.readUInt32LE(at + 8)]
        const descAt = at + 12 + Math.ceil(name / 4) * 4
        if (type === 3 /* NT_GNU_BUILD_ID */ && notes.toString('latin1', at + 12, at + 15) === 'GNU') return notes.toString('hex', descAt, descAt + desc)
        at = descAt + Math.ceil(desc / 4) * 4
      }
    }
    return undefined
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

/** The answers of a file heapspec wrote for this identity; none for anything else found there. */
function readSymbols(file: string, identity: string): Map<number, CachedSymbol> {
  const symbols = new Map<number, CachedSymbol>()
  const text = readKept(file)
  if (text === undefined) return symbols
  let data: Partial<SymbolFile>
  try {
    data = JSON.parse(text) as Partial<SymbolFile>
  } catch {
    return symbols
  }
  if (data.heapspecSymbols !== 1 || data.identity !== identity || typeof data.symbols !== 'object' || data.symbols === null) return symbols
  for (const [address, s] of Object.entries(data.symbols)) {
    if (!Array.isArray(s) || !(typeof s[0] === 'string' || s[0] === null) || !(typeof s[1] === 'string' || s[1] === null) || !(typeof s[2] === 'number' || s[2] === null)) continue
    symbols.set(parseInt(address, 16), { fn: s[0], file: s[1], line: s[2] })
  }
  return symbols
}

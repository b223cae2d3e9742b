import { randomBytes, createHash } from 'node:crypto'
import { lstatSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cacheCandidates, chooseCacheDir, privateFile } from './preload/interposer-cache.js'

/** One answer kept: the function, source file and line of a file address. */
export interface CachedSymbol {
  fn: string | null
  file: string
  line: number | null
}

/** The shape of one object's file of answers. */
interface SymbolFile {
  heapspecSymbols: 1
  identity: string
  /** By file address in hex: [fn, file, line]. */
  symbols: Record<string, [string | null, string, number | null]>
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
 * device, inode, size and modification time, so a rebuilt program is another object. Answers
 * without a source file are never kept (debug info installed later would stay unseen).
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

  /** Keeps an answer (not one without a source file). */
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
      const temporary = `${object.path}.${randomBytes(6).toString('hex')}.tmp`
      try {
        writeFileSync(temporary, JSON.stringify({ heapspecSymbols: 1, identity: object.identity, symbols } satisfies SymbolFile), { mode: 0o600, flag: 'wx' })
        renameSync(temporary, object.path)
        object.added = false
      } catch {
        // a cache that cannot be written costs the next run its symbolizer, nothing more
      }
    }
  }

  private load(path: string): Loaded | null {
    let object = this.objects.get(path)
    if (object !== undefined) return object
    object = null
    try {
      const real = realpathSync(path)
      const st = statSync(real)
      const identity = JSON.stringify([real, st.dev, st.ino, st.size, st.mtimeMs])
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

/** The answers of a file heapspec wrote for this identity; none for anything else found there. */
function readSymbols(file: string, identity: string): Map<number, CachedSymbol> {
  const symbols = new Map<number, CachedSymbol>()
  let data: Partial<SymbolFile>
  try {
    if (!privateFile(lstatSync(file))) return symbols
    data = JSON.parse(readFileSync(file, 'utf8')) as Partial<SymbolFile>
  } catch {
    return symbols
  }
  if (data.heapspecSymbols !== 1 || data.identity !== identity || typeof data.symbols !== 'object' || data.symbols === null) return symbols
  for (const [address, s] of Object.entries(data.symbols)) {
    if (!Array.isArray(s) || !(typeof s[0] === 'string' || s[0] === null) || typeof s[1] !== 'string' || !(typeof s[2] === 'number' || s[2] === null)) continue
    symbols.set(parseInt(address, 16), { fn: s[0], file: s[1], line: s[2] })
  }
  return symbols
}

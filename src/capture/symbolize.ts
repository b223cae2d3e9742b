import { realpathSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { execa, type ResultPromise } from 'execa'
import type { LoadedObject } from './event-stream.js'
import type { SymbolCache } from './symbol-cache.js'

/** A return address resolved: what a `Y` line of the capture protocol carries. */
export interface ResolvedPc {
  pc: number
  fn: string | null
  file: string | null
  line: number | null
  object: string
}

/** The symbolizers heapspec can drive, best first: llvm-symbolizer reads DWARF 5 line tables exactly. */
const LLVM_SYMBOLIZER = ['--output-style=GNU', '--functions=linkage', '--demangle', '--inlines', '--addresses']
const TOOLS = [
  { command: 'llvm-symbolizer', args: (object: string) => ['--obj', object, ...LLVM_SYMBOLIZER] },
  { command: 'addr2line', args: (object: string) => ['-e', object, '--functions', '--demangle', '--inlines', '--addresses'] },
]

/** How many symbolizer processes run at once where each object needs its own. */
const SYMBOLIZERS = 4

/** glibc's objects: their functions are reported by the name libc exports, as the GDB script reports them. */
const LIBC = /\/libc[.-][^/]*\.so|\/libc\.so/

interface ToolFrame {
  fn: string | null
  file: string | null
  line: number | null
  /** The address lies in code inlined into another function. */
  inlined: boolean
}

/** Runs a symbolizer over input lines of one address each; undefined when it is missing. */
async function runTool(command: string, args: string[], input: string[]): Promise<ToolFrame[] | undefined> {
  const result = await execa(command, args, {
    input: input.join('\n') + '\n',
    reject: false,
    timeout: 120_000,
    maxBuffer: 256 * 1024 * 1024,
  })
  return toolFrames(result, input.length)
}

/** A symbolizer's answers, one frame per address asked (after `skip` answers to drop); undefined when it is missing or failed. */
function toolFrames(result: { failed: boolean; code?: string; exitCode?: number; stdout: unknown }, count: number, skip = 0): ToolFrame[] | undefined {
  if (result.failed && (result.code === 'ENOENT' || result.exitCode === undefined)) return undefined
  const frames: ToolFrame[] = []
  let current: { fn: string | null; location: string }[] | undefined
  const lines = String(result.stdout).split('\n')
  const flush = (): void => {
    if (!current) return
    const first = current[0]
    if (!first) frames.push({ fn: null, file: null, line: null, inlined: false })
    else {
      // "file:line", "file:line (discriminator 2)", "??:0", "??:?"
      const m = /^(.*):(\d+|\?)(?: \(discriminator \d+\))?$/.exec(first.location.trim())
      const file = m && m[1] !== '??' ? m[1]! : null
      const line = m && file && m[2] !== '?' && m[2] !== '0' ? Number(m[2]) : null
      frames.push({ fn: first.fn, file, line, inlined: current.length > 1 })
    }
    current = undefined
  }
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!
    if (text.startsWith('0x') && /^0x[0-9a-f]+$/i.test(text)) {
      flush()
      current = []
      continue
    }
    if (!current || text === '') continue
    const location = lines[++i] ?? '??:0'
    current.push({ fn: text === '??' ? null : text, location })
  }
  flush()
  return frames.length === count + skip ? frames.slice(skip) : undefined
}

function realPath(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

/** A path llvm-symbolizer can read from a `"object" address` line. */
const quotable = (path: string): boolean => path.startsWith('/') && !path.includes('"')

/**
 * llvm-symbolizer, started before the program runs: loading LLVM and the objects' debug info
 * then overlaps the run instead of following it (most of what a short run's symbolizing costs).
 * It is asked once, at the end, with every address; `objects` are loaded ahead, each by a
 * question whose answer is dropped. Whoever starts one ends it: `resolve`, or `close` unused.
 */
export class EarlySymbolizer {
  private child: ResultPromise<{ stdin: 'pipe'; reject: false; timeout: number; maxBuffer: number }> | undefined
  /** The objects loaded ahead, by their real paths. */
  private readonly ahead: string[]
  private used = false

  /**
   * `objects`: the program, and the C library it most likely loads (heapspec's own, hostLibc()).
   * Nothing runs until start(): a program that makes no stack (/bin/true) needs no symbolizer, and
   * one spawned before the program delayed its start by the spawn (about 10 ms of the run's fixed
   * cost).
   */
  constructor(objects: string[]) {
    this.ahead = [...new Set(objects.map(realPath).filter(quotable))]
  }

  /** Starts llvm-symbolizer and has it load the objects ahead, once. */
  start(): void {
    if (this.child || this.used) return
    this.child = execa(TOOLS[0]!.command, LLVM_SYMBOLIZER, { stdin: 'pipe', reject: false, timeout: 120_000, maxBuffer: 256 * 1024 * 1024 })
    // a missing llvm-symbolizer closes its stdin at once: writing to it then is no error of ours
    this.child.stdin?.on('error', () => {})
    if (this.ahead.length > 0) this.child.stdin?.write(this.ahead.map((path) => `"${path}" 0x0\n`).join(''))
  }

  /**
   * How to name `path` to it: by the path it was loaded ahead under when that is the same file
   * (the dynamic linker says /lib/... where /proc says /usr/lib/...), else as it is. llvm-symbolizer
   * keeps each object it read by the name it was given.
   */
  nameOf(path: string): string {
    if (this.ahead.includes(path)) return path
    const real = realPath(path)
    return this.ahead.includes(real) ? real : path
  }

  /** The frames of `"object" address` lines; undefined when llvm-symbolizer is missing or failed. */
  async resolve(input: string[]): Promise<ToolFrame[] | undefined> {
    this.start()
    this.used = true
    this.child!.stdin?.end(input.join('\n') + '\n')
    return toolFrames(await this.child!, input.length, this.ahead.length)
  }

  /** Ends it when it was never asked (no address to resolve, or the capture failed). */
  async close(): Promise<void> {
    if (this.used) return
    this.used = true
    if (!this.child) return
    this.child.kill('SIGKILL')
    await this.child
  }
}

/** An ELF file's exported functions (.dynsym): where each starts, how long it is, its names. */
interface Exported {
  starts: number[]
  ends: number[]
  names: string[][]
}

/**
 * Reads an ELF file's exported functions: the section headers, .dynsym and its string table
 * alone (libc is 2 MB, its dynamic symbols a few hundred KB).
 */
async function exportedFunctions(path: string): Promise<Exported | undefined> {
  let file: FileHandle
  try {
    file = await open(path, 'r')
  } catch {
    return undefined
  }
  try {
    const read = async (at: number, length: number): Promise<Buffer> => {
      const buffer = Buffer.alloc(length)
      const { bytesRead } = await file.read(buffer, 0, length, at)
      return buffer.subarray(0, bytesRead)
    }
    const header = await read(0, 64)
    if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return undefined
    const shoff = Number(header.readBigUInt64LE(0x28))
    const shentsize = header.readUInt16LE(0x3a)
    const shnum = header.readUInt16LE(0x3c)
    const sections = await read(shoff, shentsize * shnum)
    const byStart = new Map<number, { end: number; names: string[] }>()
    for (let i = 0; (i + 1) * shentsize <= sections.length; i++) {
      const sh = i * shentsize
      if (sections.readUInt32LE(sh + 4) !== 11 /* SHT_DYNSYM */) continue
      const link = sections.readUInt32LE(sh + 0x28)
      if ((link + 1) * shentsize > sections.length) continue
      const symbols = await read(Number(sections.readBigUInt64LE(sh + 0x18)), Number(sections.readBigUInt64LE(sh + 0x20)))
      const strings = await read(Number(sections.readBigUInt64LE(link * shentsize + 0x18)), Number(sections.readBigUInt64LE(link * shentsize + 0x20)))
      // 64-bit fields read as two halves: BigInt reads cost more than the rest of the loop
      const u64 = (at: number): number => symbols.readUInt32LE(at) + symbols.readUInt32LE(at + 4) * 2 ** 32
      for (let at = 0; at + 24 <= symbols.length; at += 24) {
        if ((symbols[at + 4]! & 0xf) !== 2 /* STT_FUNC */ || symbols.readUInt16LE(at + 6) === 0) continue
        const value = u64(at + 8)
        if (value === 0) continue
        const nameAt = symbols.readUInt32LE(at)
        const end = strings.indexOf(0, nameAt)
        const name = strings.toString('latin1', nameAt, end < 0 ? strings.length : end)
        const entry = byStart.get(value)
        if (!entry) byStart.set(value, { end: value + u64(at + 16), names: [name] })
        else {
          if (!entry.names.includes(name)) entry.names.push(name)
          entry.end = Math.max(entry.end, value + u64(at + 16))
        }
      }
    }
    const starts = [...byStart.keys()].sort((a, b) => a - b)
    return { starts, ends: starts.map((start) => byStart.get(start)!.end), names: starts.map((start) => byStart.get(start)!.names) }
  } catch {
    return undefined
  } finally {
    await file.close()
  }
}

/** The exported function containing `address`, by its preferred name: no leading underscore, shortest. */
function exportedName(table: Exported, address: number): string | undefined {
  let lo = 0
  let hi = table.starts.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (table.starts[mid]! <= address) lo = mid + 1
    else hi = mid
  }
  const i = lo - 1
  if (i < 0 || address >= table.ends[i]!) return undefined
  return [...table.names[i]!].sort((a, b) => Number(a.startsWith('_')) - Number(b.startsWith('_')) || a.length - b.length)[0]
}

/**
 * The frames of each object's addresses (file addresses), undefined for an object no symbolizer
 * could read. One llvm-symbolizer process serves every object (it reads `"object" address` lines):
 * loading LLVM costs each process more than most lookups do. Without it, addr2line runs per
 * object, SYMBOLIZERS at a time.
 */
async function resolveAll(paths: string[], addresses: number[][], early: EarlySymbolizer | undefined): Promise<(ToolFrame[] | undefined)[]> {
  const hex = (a: number): string => `0x${a.toString(16)}`
  if (paths.length === 0) {
    await early?.close()
    return []
  }
  if (paths.every(quotable)) {
    const names = paths.map((p) => early?.nameOf(p) ?? p)
    const input = names.flatMap((p, g) => addresses[g]!.map((a) => `"${p}" ${hex(a)}`))
    const all = early ? await early.resolve(input) : paths.length > 1 ? await runTool(TOOLS[0]!.command, LLVM_SYMBOLIZER, input) : undefined
    if (all) {
      let at = 0
      return addresses.map((list) => all.slice(at, (at += list.length)))
    }
  } else await early?.close()
  const resolved: (ToolFrame[] | undefined)[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    for (let g = next++; g < paths.length; g = next++) {
      for (const tool of TOOLS) {
        resolved[g] = await runTool(tool.command, tool.args(paths[g]!), addresses[g]!.map(hex))
        if (resolved[g]) break
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(SYMBOLIZERS, paths.length) }, worker))
  return resolved
}

/**
 * Resolves return addresses to function, source file and line, object by object, with
 * llvm-symbolizer or binutils' addr2line (each address looked up at pc - 1, inside the call).
 * `program` names the object whose path the dynamic linker leaves empty. Addresses in no known
 * object, or in one no symbolizer can read, keep only their object (or nothing).
 */
export async function symbolize(
  pcs: Iterable<number>,
  objects: LoadedObject[],
  program: string,
  early?: EarlySymbolizer,
  cache?: SymbolCache,
): Promise<{ frames: ResolvedPc[]; missingTool: boolean }> {
  const byObject = new Map<string, { object: LoadedObject; pcs: number[] }>()
  const frames: ResolvedPc[] = []
  for (const pc of pcs) {
    // the last report of a range wins: a later dlopen may reuse an unloaded object's addresses
    let object: LoadedObject | undefined
    for (const o of objects) if (o.lo <= pc - 1 && pc - 1 < o.hi) object = o
    if (!object) continue
    const path = object.path === '' ? program : object.path
    if (!path.startsWith('/')) {
      frames.push({ pc, fn: null, file: null, line: null, object: path })
      continue
    }
    const group = byObject.get(`${path}\0${object.bias}`) ?? { object: { ...object, path }, pcs: [] }
    group.pcs.push(pc)
    byObject.set(`${path}\0${object.bias}`, group)
  }
  // what an earlier run was answered goes to no symbolizer
  const groups = [...byObject.values()].flatMap(({ object, pcs: list }) => {
    const fresh: number[] = []
    for (const pc of list) {
      const known = cache?.get(object.path, pc - 1 - object.bias)
      if (known) frames.push({ pc, ...known, object: object.path })
      else fresh.push(pc)
    }
    return fresh.length > 0 ? [{ object, pcs: fresh }] : []
  })
  const addresses = groups.map(({ object, pcs: list }) => list.map((pc) => pc - 1 - object.bias))
  const exporting = Promise.all(groups.map(({ object }) => (LIBC.test(object.path) ? exportedFunctions(object.path) : undefined)))
  const resolved = await resolveAll(groups.map((g) => g.object.path), addresses, early)
  const exported = await exporting
  let missingTool = false
  groups.forEach(({ object, pcs: list }, g) => {
    const found = resolved[g]
    const table = exported[g]
    if (!found) missingTool = true
    list.forEach((pc, i) => {
      const frame = found?.[i]
      let fn = frame?.fn ?? null
      if (table && frame && !frame.inlined) fn = exportedName(table, addresses[g]![i]!) ?? fn
      frames.push({ pc, fn, file: frame?.file ?? null, line: frame?.line ?? null, object: object.path })
      if (frame) cache?.set(object.path, addresses[g]![i]!, { fn, file: frame.file, line: frame.line })
    })
  })
  cache?.save()
  return { frames, missingTool }
}

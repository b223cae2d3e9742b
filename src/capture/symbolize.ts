import { readFile } from 'node:fs/promises'
import { execa } from 'execa'
import type { LoadedObject } from './event-stream.js'

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
    if (/^0x[0-9a-f]+$/i.test(text)) {
      flush()
      current = []
      continue
    }
    if (!current || text === '') continue
    const location = lines[++i] ?? '??:0'
    current.push({ fn: text === '??' ? null : text, location })
  }
  flush()
  return frames.length === input.length ? frames : undefined
}

/** An ELF file's exported functions (.dynsym): where each starts, how long it is, its names. */
interface Exported {
  starts: number[]
  ends: number[]
  names: string[][]
}

async function exportedFunctions(path: string): Promise<Exported | undefined> {
  let elf: Buffer
  try {
    elf = await readFile(path)
  } catch {
    return undefined
  }
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return undefined
  const shoff = Number(elf.readBigUInt64LE(0x28))
  const shentsize = elf.readUInt16LE(0x3a)
  const shnum = elf.readUInt16LE(0x3c)
  const byStart = new Map<number, { end: number; names: string[] }>()
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize
    if (elf.readUInt32LE(sh + 4) !== 11 /* SHT_DYNSYM */) continue
    const offset = Number(elf.readBigUInt64LE(sh + 0x18))
    const size = Number(elf.readBigUInt64LE(sh + 0x20))
    const link = elf.readUInt32LE(sh + 0x28)
    const strtab = Number(elf.readBigUInt64LE(shoff + link * shentsize + 0x18))
    for (let at = offset; at + 24 <= offset + size; at += 24) {
      const info = elf[at + 4]!
      const shndx = elf.readUInt16LE(at + 6)
      const value = Number(elf.readBigUInt64LE(at + 8))
      const length = Number(elf.readBigUInt64LE(at + 16))
      if ((info & 0xf) !== 2 /* STT_FUNC */ || shndx === 0 || value === 0) continue
      const nameAt = strtab + elf.readUInt32LE(at)
      const name = elf.toString('latin1', nameAt, elf.indexOf(0, nameAt))
      const entry = byStart.get(value) ?? { end: value + length, names: [] }
      if (!entry.names.includes(name)) entry.names.push(name)
      entry.end = Math.max(entry.end, value + length)
      byStart.set(value, entry)
    }
  }
  const sorted = [...byStart.entries()].sort((a, b) => a[0] - b[0])
  return { starts: sorted.map((e) => e[0]), ends: sorted.map((e) => e[1].end), names: sorted.map((e) => e[1].names) }
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
async function resolveAll(paths: string[], addresses: number[][]): Promise<(ToolFrame[] | undefined)[]> {
  const hex = (a: number): string => `0x${a.toString(16)}`
  if (paths.length > 1 && !paths.some((p) => p.includes('"'))) {
    const all = await runTool(TOOLS[0]!.command, LLVM_SYMBOLIZER, paths.flatMap((p, g) => addresses[g]!.map((a) => `"${p}" ${hex(a)}`)))
    if (all) {
      let at = 0
      return addresses.map((list) => all.slice(at, (at += list.length)))
    }
  }
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
export async function symbolize(pcs: Iterable<number>, objects: LoadedObject[], program: string): Promise<{ frames: ResolvedPc[]; missingTool: boolean }> {
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
  const groups = [...byObject.values()]
  const addresses = groups.map(({ object, pcs: list }) => list.map((pc) => pc - 1 - object.bias))
  const exporting = Promise.all(groups.map(({ object }) => (LIBC.test(object.path) ? exportedFunctions(object.path) : undefined)))
  const resolved = await resolveAll(groups.map((g) => g.object.path), addresses)
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
    })
  })
  return { frames, missingTool }
}

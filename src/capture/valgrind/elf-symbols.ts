import { closeSync, openSync, readSync } from 'node:fs'

const SHT_SYMTAB = 2
const SHT_DYNSYM = 11
const SYMBOL_SIZE = 24

function readAt(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, offset + done)
    if (n === 0) break
    done += n
  }
  return buffer.subarray(0, done)
}

/**
 * Whether an x86-64 ELF file names any of `names` in its symbol tables (.symtab or .dynsym), defined
 * there or imported. Reads only the section headers and the symbol and string tables, not the file.
 * A file heapspec cannot read as ELF names nothing.
 */
export function elfNamesSymbol(path: string, names: readonly string[]): boolean {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return false
  }
  try {
    const header = readAt(fd, 0, 64)
    if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return false
    const shoff = Number(header.readBigUInt64LE(0x28))
    const shentsize = header.readUInt16LE(0x3a)
    const shnum = header.readUInt16LE(0x3c)
    if (shoff === 0 || shentsize < 64 || shnum === 0) return false
    const table = readAt(fd, shoff, shentsize * shnum)
    const section = (i: number): { type: number; offset: number; size: number; link: number } => {
      const at = i * shentsize
      return {
        type: table.readUInt32LE(at + 4),
        offset: Number(table.readBigUInt64LE(at + 24)),
        size: Number(table.readBigUInt64LE(at + 32)),
        link: table.readUInt32LE(at + 40),
      }
    }
    const wanted = new Set(names)
    for (let i = 0; i < shnum && (i + 1) * shentsize <= table.length; i++) {
      const symtab = section(i)
      if (symtab.type !== SHT_SYMTAB && symtab.type !== SHT_DYNSYM) continue
      if (symtab.link >= shnum) continue
      const strtab = section(symtab.link)
      const strings = readAt(fd, strtab.offset, strtab.size)
      // Cheap first: the name must be in the string table at all.
      if (!names.some((name) => strings.includes(`${name}\0`))) continue
      const symbols = readAt(fd, symtab.offset, symtab.size)
      for (let at = 0; at + SYMBOL_SIZE <= symbols.length; at += SYMBOL_SIZE) {
        const start = symbols.readUInt32LE(at)
        const end = strings.indexOf(0, start)
        if (end < 0) continue
        if (wanted.has(strings.toString('latin1', start, end))) return true
      }
    }
    return false
  } catch {
    return false
  } finally {
    closeSync(fd)
  }
}

const STT_OBJECT = 1
const STT_FUNC = 2
const STT_TLS = 6

/** One symbol table of an ELF file: its entries and the string table their names are in. */
interface SymbolTable {
  type: number
  symbols: Buffer
  strings: Buffer
}

/** The symbol tables (.symtab, .dynsym) of an x86-64 ELF file; none for a file heapspec cannot read as ELF. */
function symbolTables(path: string): SymbolTable[] {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return []
  }
  try {
    const header = readAt(fd, 0, 64)
    if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return []
    const shoff = Number(header.readBigUInt64LE(0x28))
    const shentsize = header.readUInt16LE(0x3a)
    const shnum = header.readUInt16LE(0x3c)
    if (shoff === 0 || shentsize < 64 || shnum === 0) return []
    const table = readAt(fd, shoff, shentsize * shnum)
    const section = (i: number): { type: number; offset: number; size: number; link: number } => {
      const at = i * shentsize
      return { type: table.readUInt32LE(at + 4), offset: Number(table.readBigUInt64LE(at + 24)), size: Number(table.readBigUInt64LE(at + 32)), link: table.readUInt32LE(at + 40) }
    }
    const tables: SymbolTable[] = []
    for (let i = 0; i < shnum && (i + 1) * shentsize <= table.length; i++) {
      const symtab = section(i)
      if ((symtab.type !== SHT_SYMTAB && symtab.type !== SHT_DYNSYM) || symtab.link >= shnum) continue
      const strtab = section(symtab.link)
      tables.push({ type: symtab.type, symbols: readAt(fd, symtab.offset, symtab.size), strings: readAt(fd, strtab.offset, strtab.size) })
    }
    return tables
  } catch {
    return []
  } finally {
    closeSync(fd)
  }
}

function symbolName(table: SymbolTable, at: number): string {
  const start = table.symbols.readUInt32LE(at)
  const end = table.strings.indexOf(0, start)
  return end > start ? table.strings.toString('latin1', start, end) : ''
}

/**
 * The names of the functions an x86-64 ELF file defines (.symtab, else .dynsym), as the file spells
 * them (C++ names mangled); empty for a file heapspec cannot read as ELF, or a stripped one.
 */
export function elfFunctionNames(path: string): string[] {
  const tables = symbolTables(path)
  for (const wanted of [SHT_SYMTAB, SHT_DYNSYM]) {
    const names = new Set<string>()
    for (const table of tables) {
      if (table.type !== wanted) continue
      for (let at = 0; at + SYMBOL_SIZE <= table.symbols.length; at += SYMBOL_SIZE) {
        const info = table.symbols[at + 4]!
        const shndx = table.symbols.readUInt16LE(at + 6)
        if ((info & 0xf) !== STT_FUNC || shndx === 0) continue
        const name = symbolName(table, at)
        if (name) names.add(name)
      }
    }
    if (names.size > 0) return [...names]
  }
  return []
}

/**
 * The data symbol (a variable) of an x86-64 ELF file that holds file address `vaddr`, and how far
 * inside it, as memcheck names an address in a program's data ("8 bytes inside data symbol
 * "g_buf""); undefined when none does.
 */
export function elfDataSymbolAt(path: string, vaddr: number): { name: string; offset: number } | undefined {
  for (const table of symbolTables(path)) {
    const s = table.symbols
    for (let at = 0; at + SYMBOL_SIZE <= s.length; at += SYMBOL_SIZE) {
      const type = s[at + 4]! & 0xf
      if ((type !== STT_OBJECT && type !== STT_TLS) || s.readUInt16LE(at + 6) === 0) continue
      const value = Number(s.readBigUInt64LE(at + 8))
      const size = Number(s.readBigUInt64LE(at + 16))
      if (vaddr >= value && vaddr < value + Math.max(size, 1)) return { name: symbolName(table, at), offset: vaddr - value }
    }
  }
  return undefined
}

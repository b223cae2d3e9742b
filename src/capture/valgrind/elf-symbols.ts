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

const STT_FUNC = 2

/**
 * The names of the functions an x86-64 ELF file defines (.symtab, else .dynsym), as the file spells
 * them (C++ names mangled); empty for a file heapspec cannot read as ELF, or a stripped one.
 */
export function elfFunctionNames(path: string): string[] {
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
    for (const wanted of [SHT_SYMTAB, SHT_DYNSYM]) {
      const names = new Set<string>()
      for (let i = 0; i < shnum && (i + 1) * shentsize <= table.length; i++) {
        const symtab = section(i)
        if (symtab.type !== wanted || symtab.link >= shnum) continue
        const strings = readAt(fd, section(symtab.link).offset, section(symtab.link).size)
        const symbols = readAt(fd, symtab.offset, symtab.size)
        for (let at = 0; at + SYMBOL_SIZE <= symbols.length; at += SYMBOL_SIZE) {
          const info = symbols[at + 4]!
          const shndx = symbols.readUInt16LE(at + 6)
          if ((info & 0xf) !== STT_FUNC || shndx === 0) continue
          const start = symbols.readUInt32LE(at)
          const end = strings.indexOf(0, start)
          if (end > start) names.add(strings.toString('latin1', start, end))
        }
      }
      if (names.size > 0) return [...names]
    }
    return []
  } catch {
    return []
  } finally {
    closeSync(fd)
  }
}

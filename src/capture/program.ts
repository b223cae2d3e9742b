import { accessSync, constants, openSync, readSync, closeSync, statSync } from 'node:fs'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import { CannotStartError } from '../errors.js'

/** What heapspec learned about a program from its ELF header before running it. */
export interface ProgramInfo {
  path: string
  /** Dynamically linked (has an interpreter): the malloc family lives in libc.so and can be observed. */
  dynamic: boolean
}

/** Finds `program` the way a shell would: a name with a slash is a path, a bare name is looked up on PATH. */
export function resolveProgram(program: string, cwd: string, env: Record<string, string | undefined>): string {
  if (program.includes('/')) return isAbsolute(program) ? program : resolve(cwd, program)
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, program)
    try {
      accessSync(candidate, constants.X_OK)
      if (statSync(candidate).isFile()) return candidate
    } catch {
      // not here
    }
  }
  throw new CannotStartError(`heapspec: cannot run ${program}: not found on PATH. Give a path (./${program}) or add its directory to PATH.`)
}

function readHeader(path: string, display: string): Buffer {
  let stat
  try {
    stat = statSync(path)
  } catch {
    throw new CannotStartError(`heapspec: cannot run ${display}: no such file. Check the path (relative paths start from ${process.cwd()}) or build it first.`)
  }
  if (stat.isDirectory()) throw new CannotStartError(`heapspec: cannot run ${display}: it is a directory. Name the program inside it.`)
  try {
    accessSync(path, constants.X_OK)
  } catch {
    throw new CannotStartError(`heapspec: cannot run ${display}: not executable. Run chmod +x ${display}, or check that it is the program you built.`)
  }
  const fd = openSync(path, 'r')
  try {
    const header = Buffer.alloc(4096)
    const n = readSync(fd, header, 0, header.length, 0)
    return header.subarray(0, n)
  } finally {
    closeSync(fd)
  }
}

/**
 * Checks that `path` is a program heapspec can capture: an x86-64 ELF executable, dynamically linked
 * (a static binary carries its own malloc, which neither gdb breakpoints on libc nor memcheck can see).
 */
export function inspectProgram(path: string, display: string): ProgramInfo {
  const header = readHeader(path, display)
  if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46) {
    const script = header.subarray(0, 2).toString('latin1') === '#!'
    throw new CannotStartError(
      `heapspec: cannot run ${display}: not an ELF executable${script ? ' (it is a script)' : ''}. ` +
        `Give the compiled program${script ? ', or the interpreter and the script (node script.js)' : ''}.`,
    )
  }
  if (header[4] !== 2 || header[5] !== 1 || header.readUInt16LE(18) !== 62) {
    throw new CannotStartError(`heapspec: cannot run ${display}: not an x86-64 program. heapspec captures x86-64 Linux programs only.`)
  }
  const type = header.readUInt16LE(16)
  if (type !== 2 && type !== 3) throw new CannotStartError(`heapspec: cannot run ${display}: an ELF file but not an executable (a relocatable object or core file?). Link it into a program first.`)
  const phoff = Number(header.readBigUInt64LE(32))
  const phentsize = header.readUInt16LE(54)
  const phnum = header.readUInt16LE(56)
  let dynamic = false
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize
    if (at + 4 > header.length) break
    if (header.readUInt32LE(at) === 3 /* PT_INTERP */) dynamic = true
  }
  if (!dynamic) {
    throw new CannotStartError(
      `heapspec: cannot run ${display}: it is statically linked, so its malloc cannot be observed. Link it dynamically (drop -static) and run again.`,
    )
  }
  return { path, dynamic }
}

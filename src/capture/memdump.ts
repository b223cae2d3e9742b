import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import type { Frame } from '../model/types.js'

/** How much text a ChunkedFile gathers before it writes. */
const CHUNK = 1 << 20

/**
 * A file written a megabyte at a time, synchronously: memdump.txt and its raw events are millions
 * of lines, and a stream's write per line (a Buffer, a callback, a wait for 'drain' each 16 KiB)
 * cost seconds more than the bytes.
 */
export class ChunkedFile {
  private readonly fd: number
  private readonly buffer = Buffer.allocUnsafe(CHUNK)
  private used = 0

  constructor(path: string) {
    this.fd = openSync(path, 'w')
  }

  write(text: string): void {
    // a UTF-16 unit is at most 3 bytes of UTF-8
    if (this.used + text.length * 3 > CHUNK) {
      this.flush()
      if (text.length * 3 > CHUNK) return this.writeAll(Buffer.from(text))
    }
    this.used += this.buffer.write(text, this.used)
  }

  /** The bytes of `from` between `start` and `end`, then a newline. */
  writeLine(from: Buffer, start: number, end: number): void {
    if (this.used + end - start + 1 > CHUNK) this.flush()
    if (end - start + 1 > CHUNK) {
      this.writeAll(from.subarray(start, end))
      this.buffer[this.used++] = 10
      return
    }
    this.used += from.copy(this.buffer, this.used, start, end)
    this.buffer[this.used++] = 10
  }

  private flush(): void {
    this.writeAll(this.buffer.subarray(0, this.used))
    this.used = 0
  }

  private writeAll(bytes: Buffer): void {
    for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at)
  }

  close(): void {
    this.flush()
    closeSync(this.fd)
  }
}

/** The lines of a file (without their newlines), read a megabyte at a time. */
function* fileLines(path: string): Generator<string> {
  const fd = openSync(path, 'r')
  try {
    const buffer = Buffer.alloc(CHUNK)
    let kept = 0
    for (;;) {
      const read = readSync(fd, buffer, kept, buffer.length - kept, null)
      const end = kept + read
      if (read === 0) {
        if (end > 0) yield buffer.toString('utf8', 0, end)
        return
      }
      const last = buffer.lastIndexOf(10, end - 1)
      if (last < 0 && end === buffer.length) throw new Error(`${path}: a line longer than ${CHUNK} bytes`)
      if (last >= 0) {
        const lines = buffer.toString('utf8', 0, last).split('\n')
        for (const line of lines) yield line
        buffer.copy(buffer, 0, last + 1, end)
        kept = end - last - 1
      } else kept = end
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * memdump.txt from the raw events a capture kept (`raw`: A, R, F, B, E and e lines, see
 * EventStream): every event with its stack, resolved, in the order the program made them. Each
 * stack's text is made once: a run's millions of events come from a few thousand stacks.
 */
export function writeMemdump(raw: string, target: string, stackFrames: (id: number) => Frame[]): void {
  const out = new ChunkedFile(target)
  const stacks = new Map<string, string>()
  const where = (id: string): string => {
    let text = stacks.get(id)
    if (text === undefined) {
      text = stackFrames(Number(id))
        .map((f) => `    ${f.fn ?? '???'}${f.file ? ` (${f.file}:${f.line})` : f.object ? ` (${f.object})` : ''}`)
        .join('\n')
      stacks.set(id, text)
    }
    return text
  }
  try {
    for (const line of fileLines(raw)) {
      const f = line.slice(2).split(' ')
      switch (line[0]) {
        case 'A':
          out.write(`malloc  thread ${f[0]} size ${f[2]} -> 0x${f[1]}\n${where(f[3]!)}\n`)
          break
        case 'R':
          out.write(`realloc thread ${f[0]} 0x${f[1]} size ${f[3]} -> 0x${f[2]}\n${where(f[4]!)}\n`)
          break
        case 'F':
          out.write(`free    thread ${f[0]} 0x${f[1]}\n`)
          break
        default:
          out.write(`${line[0] === 'B' ? 'test begin' : 'test end'} thread ${f[0]} ${f.slice(1).join(' ')}\n`)
      }
    }
  } finally {
    out.close()
  }
}

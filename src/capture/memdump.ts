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
  /** The chunk being gathered, and how much of it is used: writeMemdump fills it in place (see room). */
  readonly buffer = Buffer.allocUnsafe(CHUNK)
  used = 0

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
    // a loop, not Buffer#copy: a line is a few dozen bytes, and the copy's own cost is more
    const to = this.buffer
    let at = this.used
    for (let i = start; i < end; i++) to[at++] = from[i]!
    to[at++] = 10
    this.used = at
  }

  /** Makes room for `bytes` more in the chunk (at most CHUNK). */
  room(bytes: number): void {
    if (this.used + bytes > CHUNK) this.flush()
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

/** Calls `line` with each line of a file (its bytes in a buffer, from `start` to `end`, no newline), read a megabyte at a time. */
function eachLine(path: string, line: (buffer: Buffer, start: number, end: number) => void): void {
  const fd = openSync(path, 'r')
  try {
    const buffer = Buffer.alloc(CHUNK)
    let kept = 0
    for (;;) {
      const read = readSync(fd, buffer, kept, buffer.length - kept, null)
      const end = kept + read
      if (read === 0) {
        if (end > 0) line(buffer, 0, end)
        return
      }
      let from = 0
      for (let nl = buffer.indexOf(10, from); nl >= 0 && nl < end; nl = buffer.indexOf(10, from)) {
        line(buffer, from, nl)
        from = nl + 1
      }
      if (from === 0 && end === buffer.length) throw new Error(`${path}: a line longer than ${CHUNK} bytes`)
      buffer.copy(buffer, 0, from, end)
      kept = end - from
    }
  } finally {
    closeSync(fd)
  }
}

/** An event line as text (`line.slice(2).split(' ')`'s fields): any line, of any form. */
function eventText(line: string, where: (id: string) => string): string {
  const f = line.slice(2).split(' ')
  switch (line[0]) {
    case 'A':
      return `malloc  thread ${f[0]} size ${f[2]} -> 0x${f[1]}\n${where(f[3]!)}\n`
    case 'R':
      return `realloc thread ${f[0]} 0x${f[1]} size ${f[3]} -> 0x${f[2]}\n${where(f[4]!)}\n`
    case 'F':
      return `free    thread ${f[0]} 0x${f[1]}\n`
    default:
      return `${line[0] === 'B' ? 'test begin' : 'test end'} thread ${f[0]} ${f.slice(1).join(' ')}\n`
  }
}

const A = 0x41
const R = 0x52
const F = 0x46
/**
 * The pieces of each event's text around its fields (eventText's), as bytes, and which field
 * goes after each: a field's bytes are copied from the raw line, never made a string.
 */
const PIECES: Record<number, { text: Buffer[]; fields: number[]; stack: number; need: number }> = {
  [A]: { text: ['malloc  thread ', ' size ', ' -> 0x', '\n'].map((t) => Buffer.from(t)), fields: [0, 2, 1], stack: 3, need: 4 },
  [R]: { text: ['realloc thread ', ' 0x', ' size ', ' -> 0x', '\n'].map((t) => Buffer.from(t)), fields: [0, 1, 3, 2], stack: 4, need: 5 },
  [F]: { text: ['free    thread ', ' 0x'].map((t) => Buffer.from(t)), fields: [0, 1], stack: -1, need: 2 },
}

/**
 * memdump.txt from the raw events a capture kept (`raw`: A, R, F, B, E and e lines, see
 * EventStream): every event with its stack, resolved, in the order the program made them. Each
 * stack's text is made once, and an event of the interposer's form (ASCII, its stack a number)
 * is copied from its bytes: 5 million events made seconds of strings.
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
  const stackBytes: Buffer[] = []
  // field i runs from bounds[2i] to bounds[2i + 1]
  const bounds = new Int32Array(2 * 8)
  const copy = (from: Buffer, start: number, end: number): void => {
    const to = out.buffer
    let at = out.used
    for (let i = start; i < end; i++) to[at++] = from[i]!
    out.used = at
  }
  try {
    eachLine(raw, (b, start, end) => {
      const pieces = PIECES[b[start]!]
      let n = 0
      let ascii = pieces !== undefined && b[start + 1] === 0x20
      if (ascii) {
        let from = start + 2
        for (let i = from; i <= end && ascii; i++) {
          const c = i < end ? b[i]! : 0x20
          if (c >= 0x80) ascii = false
          else if (c === 0x20) {
            if (n < 8) {
              bounds[2 * n] = from
              bounds[2 * n + 1] = i
            }
            n++
            from = i + 1
          }
        }
      }
      const fields = pieces?.need
      let stack: Buffer | undefined
      if (ascii && pieces!.stack >= 0 && n >= fields!) {
        const s = bounds[2 * pieces!.stack]!
        const e = bounds[2 * pieces!.stack + 1]!
        let id = 0
        for (let i = s; i < e && id >= 0; i++) id = b[i]! >= 0x30 && b[i]! <= 0x39 && i - s < 9 ? id * 10 + b[i]! - 0x30 : -1
        if (id >= 0 && e > s) stack = stackBytes[id] ??= Buffer.from(where(b.toString('latin1', s, e)))
        else ascii = false
      }
      if (!ascii || n < fields! || (stack && stack.length > CHUNK / 2)) return out.write(eventText(b.toString('utf8', start, end), where))
      const p = pieces!
      let length = 2 + (stack?.length ?? 0)
      for (const t of p.text) length += t.length
      for (const f of p.fields) length += bounds[2 * f + 1]! - bounds[2 * f]!
      out.room(length)
      for (let k = 0; k < p.fields.length; k++) {
        copy(p.text[k]!, 0, p.text[k]!.length)
        copy(b, bounds[2 * p.fields[k]!]!, bounds[2 * p.fields[k]! + 1]!)
      }
      if (stack) {
        copy(p.text[p.fields.length]!, 0, 1)
        out.buffer.set(stack, out.used)
        out.used += stack.length
      }
      out.buffer[out.used++] = 10
    })
  } finally {
    out.close()
  }
}

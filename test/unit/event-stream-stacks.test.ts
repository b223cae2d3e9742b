import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { EventStream } from '../../src/capture/event-stream.js'

// Stacks and symbols the way a run of many sites sends them: S lines read without waiting a turn
// each, and symbols handed to the stream by the host that resolved them (no Y line to split).

/** `text` as a stream of chunks of `size` bytes: lines split anywhere. */
function chunked(text: string, size: number): Readable {
  const bytes = Buffer.from(text)
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size))
  return Readable.from(chunks)
}

describe('the capture stream: stacks (S lines)', () => {
  const sites = 5000
  const text = Array.from({ length: sites }, (_, id) => `S ${id} ${(0x401000 + id * 16).toString(16)} 7f0000001234\n`).join('') + 'S 9999 abc\nS 10000'

  it.each([1, 13, 4096, 1 << 20])('reads every stack whole, in chunks of %i bytes', async (size) => {
    const stream = new EventStream('/')
    await stream.consume(chunked(text, size))
    const model = stream.model
    expect(model.stack(0)).toEqual([0x401000, 0x7f0000001234])
    expect(model.stack(4999)).toEqual([0x401000 + 4999 * 16, 0x7f0000001234])
    expect(model.stack(9999)).toEqual([0xabc])
    // the last line without its newline: a stack with no frames
    expect(model.stack(10000)).toEqual([])
    expect(model.allPcs().size).toBe(sites + 2)
  })
})

describe('the capture stream: S lines in other forms than the interposer\'s', () => {
  it.each(['S 5  a', 'S 5 a ', 'S  5 a', 'S 1x 10', 'S 7 ABCDEF abcdef', 'S 8 12345678901234', 'S 8 1234567890123', 'S ', 'S 9 zz', 'S 010 ff', 'S 11'])(
    '%j reads as its text does',
    async (text) => {
      const bytes = new EventStream('/')
      await bytes.consume(Readable.from([Buffer.from(`${text}\n`)]))
      const lines = new EventStream('/')
      await lines.line(text)
      const seen = (s: EventStream): unknown => [[...s.model.allPcs()], Array.from({ length: 13 }, (_, id) => s.model.stack(id))]
      expect(seen(bytes)).toEqual(seen(lines))
    },
  )

  it('reads the interposer\'s form exactly: a 13-digit address, an id of many digits', async () => {
    const stream = new EventStream('/')
    await stream.consume(Readable.from([Buffer.from('S 1234567 7ffffffff000 1\n')]))
    expect(stream.model.stack(1234567)).toEqual([0x7ffffffff000, 1])
  })
})

describe('EventStream.resolved', () => {
  it('keeps a symbol as the symbolizer named it, its file relative to the run\'s directory', () => {
    const stream = new EventStream('/work/project')
    // a C++ operator's name holds the character a Y line separates its fields with
    stream.resolved({ pc: 0x401010, fn: 'operator|(Flags, Flags)', file: '/work/project/src/flags.cc', line: 12, object: '/work/project/build/t' })
    stream.resolved({ pc: 0x401020, fn: 'main', file: '/work/project/src/flags.cc', line: 30, object: '/work/project/build/t' })
    stream.resolved({ pc: 0x7f0000001234, fn: 'start_thread', file: './nptl/./nptl/pthread_create.c', line: 442, object: '/lib/libc.so.6' })
    stream.resolved({ pc: 0x402000, fn: null, file: null, line: null, object: '' })
    expect([0x401010, 0x401020, 0x7f0000001234, 0x402000, 0x403000].map(stream.symbol)).toEqual([
      { fn: 'operator|(Flags, Flags)', file: 'src/flags.cc', line: 12, object: '/work/project/build/t', pc: '0x401010' },
      { fn: 'main', file: 'src/flags.cc', line: 30, object: '/work/project/build/t', pc: '0x401020' },
      { fn: 'start_thread', file: 'nptl/pthread_create.c', line: 442, object: '/lib/libc.so.6', pc: '0x7f0000001234' },
      { fn: null, file: null, line: null, object: null, pc: '0x402000' },
      { fn: null, file: null, line: null, object: null, pc: '0x403000' },
    ])
  })

  it('reads a Y line as before, for observers that send them', () => {
    const stream = new EventStream('/work/project')
    stream.line('Y 401010 parse|/work/project/src/p.c|7|/work/project/build/t')
    stream.line('Y 401020 |||')
    expect([0x401010, 0x401020].map(stream.symbol)).toEqual([
      { fn: 'parse', file: 'src/p.c', line: 7, object: '/work/project/build/t', pc: '0x401010' },
      { fn: null, file: null, line: null, object: null, pc: '0x401020' },
    ])
  })
})

import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { EventStream } from '../../src/capture/event-stream.js'

/** `bytes` as a stream of chunks of `size` bytes: lines split anywhere. */
function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size))
  return Readable.from(chunks)
}

/** memdump.txt of `events`, read by an EventStream in chunks of `size` bytes, pc 0x401000 named make (m.c:5). */
async function memdumpOf(events: string, size: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-memdump-unit-'))
  const stream = new EventStream('/work', join(dir, 'events.raw'))
  await stream.consume(chunked(Buffer.from(events), size))
  stream.resolved({ pc: 0x401000, fn: 'make', file: '/work/m.c', line: 5, object: '/work/m' })
  stream.writeMemdump(join(dir, 'memdump.txt'))
  return readFileSync(join(dir, 'memdump.txt'), 'utf8')
}

describe('memdump.txt, from the raw events a capture keeps', () => {
  const events = 'S 1 401000 402000\nB 7 t\u00e9st one\nA 7 10a0 16 1\nR 7 10a0 20b0 32 1\nF 7 20b0\nE 7 t\u00e9st one\nB 7 two\ne 7 two\nX exit 0\n'
  const expected = [
    'test begin thread 7 t\u00e9st one',
    'malloc  thread 7 size 16 -> 0x10a0',
    '    make (m.c:5)',
    '    ???',
    'realloc thread 7 0x10a0 size 32 -> 0x20b0',
    '    make (m.c:5)',
    '    ???',
    'free    thread 7 0x20b0',
    'test end thread 7 t\u00e9st one',
    'test begin thread 7 two',
    'test end thread 7 two',
    '',
  ].join('\n')

  it.each([1, 3, 64, 1 << 16])('lists every event with its stack, in order, whatever chunks the stream comes in (%i bytes)', async (size) => {
    expect(await memdumpOf(events, size)).toBe(expected)
  })

  it('crosses its megabyte chunks whole: 200,000 events, a test name of two-byte characters between them', async () => {
    const n = 200_000
    const lines = ['S 1 401000']
    const want: string[] = []
    for (let i = 0; i < n; i++) {
      lines.push(`A 3 ${(0x1000 + i * 16).toString(16)} ${i} 1`)
      want.push(`malloc  thread 3 size ${i} -> 0x${(0x1000 + i * 16).toString(16)}`, '    make (m.c:5)')
      if (i % 50_000 === 49_999) {
        lines.push(`B 3 ${'\u00e9'.repeat(1000)}`)
        want.push(`test begin thread 3 ${'\u00e9'.repeat(1000)}`)
      }
    }
    const text = await memdumpOf(lines.join('\n') + '\n', 1 << 16)
    expect(text.length).toBe(want.join('\n').length + 1)
    expect(text).toBe(want.join('\n') + '\n')
  })
})

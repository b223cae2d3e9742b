import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { EventStream } from '../../src/capture/event-stream.js'

/** One record of an L batch, as the interposer's out_batch_block writes it. */
function record(addr: number, size: number, seq: number, stack: number, allocator: number): Buffer {
  const b = Buffer.alloc(32)
  b.writeBigUInt64LE(BigInt(addr), 0)
  b.writeBigUInt64LE(BigInt(size), 8)
  b.writeBigUInt64LE(BigInt(seq), 16)
  b.writeUInt32LE(stack, 24)
  b.writeUInt32LE(allocator, 28)
  return b
}

/** `bytes` as a stream of chunks of `size` bytes: records and lines split anywhere. */
function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size))
  return Readable.from(chunks)
}

describe('the capture stream: binary batches of blocks (L lines)', () => {
  // three blocks sent in table order, not allocation order (seqs 15, 11, 12 of [10, 20)), inside a
  // test case, then one block by its own A line
  const bytes = Buffer.concat([
    Buffer.from('S 1 401000\nS 2 402000\nB 1 one\nL 3 10 20\n'),
    record(0x7f0000001000, 48, 15, 1, 0),
    record(0x7f0000002000, 8, 11, 2, 2),
    record(0x5500000010, 2 ** 33, 12, 1, 0),
    Buffer.from('N 5 4 100\nA 1 7f0000003000 16 1\nE 1 one\n'),
  ])

  it.each([1, 7, 31, 33, 4096])('reads every block and line, in chunks of %i bytes', async (size) => {
    const stream = new EventStream('/')
    await stream.consume(chunked(bytes, size))
    const model = stream.model
    const blocks = [...model.live.values()].sort((a, b) => a.seq - b.seq)
    // allocation order from the records' seqs (11, 12, 15), the A line after all of them
    expect(blocks.map((b) => [b.start.toString(16), b.size, b.stack, b.test, b.allocator ?? null])).toEqual([
      ['7f0000002000', 8, 2, 0, 'operator new[](unsigned long)'],
      ['5500000010', 2 ** 33, 1, 0, null],
      ['7f0000001000', 48, 1, 0, null],
      ['7f0000003000', 16, 1, 0, null],
    ])
    expect(blocks.map((b) => b.seq)).toEqual([1, 2, 5, 10])
    expect(model.totals).toEqual({ allocations: 9, frees: 4, bytesAllocated: 48 + 8 + 2 ** 33 + 100 + 16 })
    expect(model.tests.map((t) => [t.name, t.allocations, t.frees])).toEqual([['one', 9, 4]])
    expect(stream.failures).toEqual([])
  })

  it('says so when the stream ends inside a batch', async () => {
    const stream = new EventStream('/')
    await stream.consume(chunked(Buffer.concat([Buffer.from('L 2 0 2\n'), record(0x7f0000001000, 48, 0, 1, 0)]), 5))
    expect(stream.model.live.size).toBe(1)
    expect(stream.failures).toEqual(["the observer's stream ended inside a batch of blocks (1 of them missing)"])
  })
})

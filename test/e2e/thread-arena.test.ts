import { openSync, readFileSync, readSync, closeSync } from 'node:fs'
import { execa } from 'execa'
import { expect, it } from 'vitest'
import { freeChunks } from '../../src/capture/memory-image.js'
import { program } from '../support/debugee.js'

// In objects mode (runNode under gdb) the program's unseen heap counts as roots, less glibc's free
// chunks: a freed chunk's stale words would keep a lost block reachable. A thread's arena (where
// V8's and libuv's worker threads allocate) must be walked too, on this machine's real glibc.
it("finds the free chunks of a thread's own arena: its tcache's and its bins'", async () => {
  const child = execa(program('field/thread-arena'), { stdin: 'pipe', reject: false })
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let text = ''
      child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString()
        if (text.includes('\n')) resolve(text.trim())
      })
      child.once('exit', () => reject(new Error(`thread-arena exited before printing: ${text}`)))
    })
    const [live, cached, binned, guard] = line.split(' ').map((hex) => Number.parseInt(hex, 16))
    const maps = readFileSync(`/proc/${child.pid}/maps`, 'utf8').split('\n')
    const mapping = maps
      .map((l) => /^([0-9a-f]+)-([0-9a-f]+) rw-p \S+ \S+ 0\s*$/.exec(l))
      .find((m) => m && Number.parseInt(m[1]!, 16) <= live! && live! < Number.parseInt(m[2]!, 16))
    expect(mapping, `the arena holding ${line}`).toBeTruthy()
    const start = Number.parseInt(mapping![1]!, 16)
    const end = Number.parseInt(mapping![2]!, 16)
    const bytes = Buffer.alloc(end - start)
    const fd = openSync(`/proc/${child.pid}/mem`, 'r')
    try {
      readSync(fd, bytes, 0, bytes.length, start)
    } finally {
      closeSync(fd)
    }
    const free = freeChunks({ start, end, name: '', bytes })
    // the freed blocks' user memory up to the next chunk: 200 bytes in a 208-byte chunk, 2000 in 2016
    expect(free).toContainEqual([cached!, cached! + 192])
    expect(free).toContainEqual([binned!, binned! + 2000])
    for (const block of [live!, guard!]) expect(free.some(([lo, hi]) => lo <= block && block < hi)).toBe(false)
    // and the top chunk, past the guard, up to the heap's end
    expect(free.at(-1)![0]).toBeGreaterThan(guard!)
  } finally {
    child.stdin!.end()
    await child
  }
})

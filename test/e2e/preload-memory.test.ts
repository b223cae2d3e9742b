import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { interposerLibrary } from '../../src/capture/preload/backend.js'
import { program } from '../support/debugee.js'

// The interposer's own memory beside the program's: its block table is most of it (issue #15:
// 5,000,000 live blocks made the program the run's biggest process). Measured with GNU time's
// peak resident set, the interposer alone (its protocol to /dev/null), against the same command
// run natively.
const TIME = '/usr/bin/time'

/** Peak resident kilobytes of `command`, with `env` set for it alone (through env(1): GNU time itself
 * must not load the interposer, which would observe time and hide itself from its child). */
async function peakKb(command: string[], env: Record<string, string> = {}): Promise<number> {
  const sink = openSync('/dev/null', 'w') // the protocol's descriptor
  const settings = Object.entries(env).map(([k, v]) => `${k}=${v}`)
  const r = await execa(TIME, ['-f', 'heapspec-rss %M', 'env', ...settings, ...command], { reject: false, stdio: ['ignore', 'ignore', 'pipe', sink] }).finally(() => closeSync(sink))
  const m = /heapspec-rss (\d+)/.exec(String(r.stderr))
  if (r.exitCode !== 0 || !m) throw new Error(`${command.join(' ')} under ${TIME}: exit ${r.exitCode}, stderr ${String(r.stderr)}`)
  return Number(m[1])
}

describe('preload: the block table', () => {
  it('holds 1,200,000 live blocks in 24 bytes a slot at up to three-quarters load: 2,097,152 slots, and its exit scan, under 71.5 MB over the native run (at half load and 32 bytes a slot the table alone is 64 MB and more)', async () => {
    if (!existsSync(TIME)) throw new Error(`this test needs GNU time at ${TIME} (apt-get install time)`)
    const library = await interposerLibrary()
    const command = [program('field/many-blocks'), '1200000']
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-memory-'))
    try {
      const native = await peakKb(command)
      const observed = await peakKb(command, { LD_PRELOAD: library, HEAPSPEC_PRELOAD_FD: '3', HEAPSPEC_PRELOAD_DIR: dir, HEAPSPEC_PRELOAD_LIB: library })
      // 2,097,152 slots of 24 bytes are 48 MB; the old table, unmapped as it is read into the new one,
      // adds nothing at its growth; the ring, peaks and the rest are a few MB (measured: 48.6-48.8
      // MB before the scan moved into the process). The exit's scan adds its blocks in address order
      // (12 bytes each: 14 MB), their kinds (1.2 MB), the pages they cover, and its mark stack,
      // which the table of 1,200,000 pointers fills to one entry a block (4.8 MB; it grew by
      // doubling to 8 MB, 12 while it grew, 72.8 MB in all): 69.5 MB measured.
      const overMb = (observed - native) / 1024
      expect(overMb).toBeGreaterThan(60)
      expect(overMb).toBeLessThan(71.5)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

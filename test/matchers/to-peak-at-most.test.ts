import { beforeAll, describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { toPeakAtMost } from '../../matchers/to-peak-at-most.js'
import { allocationSnapshot } from '../../matchers/to-match-allocation-snapshot.js'
import { toSubject } from '../../matchers/subject.js'
import { runNative, type HeapRun } from '../../src/index.js'
import { program } from '../support/debugee.js'
import { failureOf, parserRun } from './run-fixture.js'

// On a real run of debugee/peaks.c under the preload backend: four_blocks peaks at 1 MiB in 4
// blocks, with_fixture at 5000 bytes of its own (105000 in the whole heap, a fixture's beside).
let run: HeapRun
beforeAll(async () => {
  run = await runNative([program('peaks')], { backend: 'preload' })
})

describe('toPeakAtMost', () => {
  it("passes at a test case's peak and fails one byte under it, on its own bytes and on the heap's", () => {
    const fixture = run.test('with_fixture')
    expect(fixture).toPeakAtMost({ bytes: 5000 })
    expect(fixture).toPeakAtMost({ heapBytes: 105000 })
    expect(fixture).toPeakAtMost({ bytes: 5000, heapBytes: 105000 })
    expect(fixture).not.toPeakAtMost({ bytes: 4999 })
    expect(fixture).not.toPeakAtMost({ heapBytes: 104999 })
    expect(fixture).not.toPeakAtMost({ bytes: 5000, heapBytes: 104999 })
    expect(failureOf(() => expect(fixture).toPeakAtMost({ bytes: 4096 }))).toMatchInlineSnapshot(`
      "expect(run.test("with_fixture")).toPeakAtMost({ bytes: 4096 })

      Expected a peak of at most 4,096 bytes live at once, found 5,000 bytes live at once in test "with_fixture" (the whole heap's: 105,000 bytes).
      Live at its peak:
        - 2.9 KiB in 1 block, allocated at make_chunk (debugee/peaks.c:30) <- with_fixture (debugee/peaks.c:53) <- main (debugee/peaks.c:106)
        - 2.0 KiB in 1 block, allocated at make_tail (debugee/peaks.c:37) <- with_fixture (debugee/peaks.c:54) <- main (debugee/peaks.c:106)"
    `)
  })

  it('names the sites live at the peak, biggest first', () => {
    expect(failureOf(() => expect(run.test('four_blocks')).toPeakAtMost({ bytes: 1000000 }))).toMatchInlineSnapshot(`
      "expect(run.test("four_blocks")).toPeakAtMost({ bytes: 1000000 })

      Expected a peak of at most 1,000,000 bytes live at once, found 1,048,576 bytes live at once in test "four_blocks" (the whole heap's: 1,048,576 bytes).
      Live at its peak:
        - 768.0 KiB in 3 blocks, allocated at make_chunk (debugee/peaks.c:30) <- four_blocks (debugee/peaks.c:45) <- main (debugee/peaks.c:101)
        - 256.0 KiB in 1 block, allocated at make_tail (debugee/peaks.c:37) <- four_blocks (debugee/peaks.c:46) <- main (debugee/peaks.c:101)"
    `)
  })

  it("reads the run's peak from a HeapRun or its JSON alike", () => {
    expect(run).toPeakAtMost({ bytes: 1048576 })
    expect(run.toJSON()).not.toPeakAtMost({ bytes: 1048575 })
    expect(failureOf(() => expect(run.toJSON()).toPeakAtMost({ bytes: 512 * 1024 }))).toMatchInlineSnapshot(`
      "expect(run).toPeakAtMost({ bytes: 524288 })

      Expected a peak of at most 524,288 bytes live at once, found 1,048,576 bytes live at once in debugee/build/peaks.
      Live at the peak:
        - 768.0 KiB in 3 blocks, allocated at make_chunk (debugee/peaks.c:30) <- four_blocks (debugee/peaks.c:45) <- main (debugee/peaks.c:101)
        - 256.0 KiB in 1 block, allocated at make_tail (debugee/peaks.c:37) <- four_blocks (debugee/peaks.c:46) <- main (debugee/peaks.c:101)"
    `)
  })

  it('says what the limit was under .not, and keeps pass as it is', () => {
    const grows = run.test('grows')
    expect(failureOf(() => expect(grows).not.toPeakAtMost({ bytes: 4000, heapBytes: 8000 }))).toMatchInlineSnapshot(`
      "expect(run.test("grows")).not.toPeakAtMost({ bytes: 4000, heapBytes: 8000 })

      Expected a peak of more than 4,000 bytes live at once or more than 8,000 bytes live in the whole heap, found 4,000 bytes live at once in test "grows" (the whole heap's: 4,000 bytes).
      Live at its peak:
        - 3.9 KiB in 1 block, allocated at grows (debugee/peaks.c:63) <- main (debugee/peaks.c:111)"
    `)
    expect(toPeakAtMost.call({ isNot: true }, grows, { bytes: 4000 }).pass).toBe(true)
  })

  it('rejects missing, unknown and negative limits, and a run that has no peak (valgrind)', () => {
    expect(failureOf(() => expect(run).toPeakAtMost({ bytes: -1 }))).toMatchInlineSnapshot(`"Expected the \`bytes\` limit of toPeakAtMost to be a non-negative number, got \`-1\` (number)."`)
    expect(failureOf(() => expect(run).toPeakAtMost({ blocks: 1 } as never))).toMatchInlineSnapshot(`"Unknown option \`blocks\` of toPeakAtMost. Known options: bytes, heapBytes."`)
    expect(failureOf(() => expect(run).toPeakAtMost({}))).toMatchInlineSnapshot(`"Expected toPeakAtMost to be given at least one limit { bytes?, heapBytes? }, got \`{}\` (object)."`)
    const valgrind = { ...parserRun(), backend: 'valgrind' }
    expect(failureOf(() => expect(valgrind).toPeakAtMost({ bytes: 1 }))).toMatchInlineSnapshot(`"heapspec: toPeakAtMost found no peak figures in build/parser_tests --all (backend: valgrind). The valgrind backend keeps none (memcheck has no high-water mark), nor does runNode's \`objects\` under preload; run it with backend: 'preload' or 'gdb'."`)
    expect(failureOf(() => expect(valgrind).not.toPeakAtMost({ bytes: 1 }))).toMatchInlineSnapshot(`"heapspec: toPeakAtMost found no peak figures in build/parser_tests --all (backend: valgrind). The valgrind backend keeps none (memcheck has no high-water mark), nor does runNode's \`objects\` under preload; run it with backend: 'preload' or 'gdb'."`)
  })
})

describe('toMatchAllocationSnapshot({ peak: true })', () => {
  it('pins the peaks beside the counts when asked, and only then', () => {
    expect(allocationSnapshot(toSubject(run.test('with_fixture'), 'test'), { peak: true }).peak).toEqual({ bytes: 5000, heapBytes: 105000 })
    expect(allocationSnapshot(toSubject(run, 'test'), { peak: true }).peak).toEqual({ bytes: 1048576 })
    expect(allocationSnapshot(toSubject(run, 'test')).peak).toBeUndefined()
    expect(run.test('four_blocks')).toMatchAllocationSnapshot({ peak: true })
    expect(run).toMatchAllocationSnapshot({ peak: true }, 'whole run with its peak')
  })

  it('refuses a bad option, and a peak the run does not have', () => {
    expect(failureOf(() => expect(run).toMatchAllocationSnapshot({ peak: 1 } as never))).toMatchInlineSnapshot(`"Expected the \`peak\` option of toMatchAllocationSnapshot to be a boolean, got \`1\` (number)."`)
    expect(failureOf(() => expect(run).toMatchAllocationSnapshot({ peaks: true } as never))).toMatchInlineSnapshot(`"Unknown option \`peaks\` of toMatchAllocationSnapshot. Known options: peak."`)
    expect(failureOf(() => expect(run).toMatchAllocationSnapshot({ peak: true }, 2 as never))).toMatchInlineSnapshot(`"Expected the hint of toMatchAllocationSnapshot to be a string, got \`2\` (number)."`)
    expect(failureOf(() => expect({ ...parserRun(), backend: 'valgrind' }).toMatchAllocationSnapshot({ peak: true }))).toMatchInlineSnapshot(`"heapspec: toMatchAllocationSnapshot found no peak figures in build/parser_tests --all (backend: valgrind). The valgrind backend keeps none (memcheck has no high-water mark), nor does runNode's \`objects\` under preload; run it with backend: 'preload' or 'gdb'."`)
  })
})

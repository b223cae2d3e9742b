import { describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { toLeakAtMost } from '../../matchers/to-leak-at-most.js'
import { failureOf, parserHeapRun } from './run-fixture.js'

describe('toLeakAtMost', () => {
  it('passes at the limit and fails one byte or one block under it', () => {
    const header = parserHeapRun().test('parses header')
    // definite 1,024 bytes in 1 block + indirect 128 bytes in 2 blocks
    expect(header).toLeakAtMost({ bytes: 1152 })
    expect(header).toLeakAtMost({ blocks: 3 })
    expect(header).toLeakAtMost({ bytes: 1152, blocks: 3 })
    expect(header).not.toLeakAtMost({ bytes: 1151 })
    expect(header).not.toLeakAtMost({ blocks: 2 })
    expect(header).not.toLeakAtMost({ bytes: 1152, blocks: 2 })
    expect(failureOf(() => expect(header).toLeakAtMost({ bytes: 1151, blocks: 3 }))).toMatchInlineSnapshot(`
      "expect(run.test("parses header")).toLeakAtMost({ bytes: 1151, blocks: 3 })

      Expected at most 1,151 bytes and at most 3 blocks to leak, found 1,152 bytes in 3 blocks in test "parses header":
        - definite: 1.0 KiB in 1 block, allocated at parse_header (src/parser.c:42) <- run_case (tests/main.c:61) <- main (tests/main.c:88)
        - indirect: 128 B in 2 blocks, allocated at node_new (src/list.c:17) <- parse_header (src/parser.c:44) <- run_case (tests/main.c:61)"
    `)
  })

  it('says what the limit was under .not', () => {
    const run = parserHeapRun()
    expect(failureOf(() => expect(run.test('parses empty')).not.toLeakAtMost({ bytes: 0, blocks: 0 }))).toMatchInlineSnapshot(`
      "expect(run.test("parses empty")).not.toLeakAtMost({ bytes: 0, blocks: 0 })

      Expected more than 0 bytes or more than 0 blocks to leak, found 0 bytes in 0 blocks in test "parses empty"."
    `)
  })

  it('counts only the kinds asked for', () => {
    const run = parserHeapRun()
    expect(run).toLeakAtMost({ bytes: 40, kinds: ['possible'] })
    expect(failureOf(() => expect(run).toLeakAtMost({ bytes: 39, kinds: ['possible'] }))).toMatchInlineSnapshot(`
      "expect(run).toLeakAtMost({ bytes: 39, kinds: ["possible"] })

      Expected at most 39 bytes to leak (possible), found 40 bytes in 1 block in build/parser_tests --all:
        - possible: 40 B in 1 block, allocated at load_table (src/table.cpp:9) <- main (tests/main.c:80)"
    `)
  })

  it('keeps pass as it is under .not', () => {
    const header = parserHeapRun().test('parses header')
    expect(toLeakAtMost.call({ isNot: true }, header, { bytes: 2000 }).pass).toBe(true)
  })

  it('rejects missing, unknown and negative limits', () => {
    const run = parserHeapRun()
    expect(failureOf(() => expect(run).toLeakAtMost(undefined as never))).toMatchInlineSnapshot(`"Expected the argument of toLeakAtMost to be an object { bytes?, blocks? }, got \`undefined\`."`)
    expect(failureOf(() => expect(run).toLeakAtMost({}))).toMatchInlineSnapshot(`"Expected toLeakAtMost to be given at least one limit { bytes?, blocks? }, got \`{}\` (object)."`)
    expect(failureOf(() => expect(run).toLeakAtMost({ bytes: -1 }))).toMatchInlineSnapshot(`"Expected the \`bytes\` limit of toLeakAtMost to be a non-negative number, got \`-1\` (number)."`)
    expect(failureOf(() => expect(run).toLeakAtMost({ bytes: '1 KiB' } as never))).toMatchInlineSnapshot(`"Expected the \`bytes\` limit of toLeakAtMost to be a non-negative number, got \`1 KiB\` (string)."`)
    expect(failureOf(() => expect(run).toLeakAtMost({ allocations: 1 } as never))).toMatchInlineSnapshot(`"Unknown option \`allocations\` of toLeakAtMost. Known options: bytes, blocks, kinds."`)
    expect(failureOf(() => expect('run').toLeakAtMost({ bytes: 1 }))).toMatchInlineSnapshot(`"Expected the received value of toLeakAtMost to be a heap run (from runNative), a test case (from run.test(name)) or a run JSON (schema 1), got \`run\` (string)."`)
  })
})

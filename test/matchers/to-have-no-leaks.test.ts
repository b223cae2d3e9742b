import { describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { toHaveNoLeaks } from '../../matchers/to-have-no-leaks.js'
import { failureOf, manyLeaksRun, parserHeapRun, parserRun } from './run-fixture.js'

describe('toHaveNoLeaks', () => {
  it('passes on a test case that leaked nothing, and fails under .not', () => {
    const run = parserHeapRun()
    expect(run.test('parses empty')).toHaveNoLeaks()
    expect(failureOf(() => expect(run.test('parses empty')).not.toHaveNoLeaks())).toMatchInlineSnapshot(`
      "expect(run.test("parses empty")).not.toHaveNoLeaks()

      Expected leaks, found none in test "parses empty"."
    `)
  })

  it('fails on a test case that leaked, naming the test, the kinds, the amounts and the user code', () => {
    const run = parserHeapRun()
    expect(run.test('parses header')).not.toHaveNoLeaks()
    expect(failureOf(() => expect(run.test('parses header')).toHaveNoLeaks())).toMatchInlineSnapshot(`
      "expect(run.test("parses header")).toHaveNoLeaks()

      Expected no leaks, found 2 leaks (1.1 KiB) in test "parses header":
        - definite: 1.0 KiB in 1 block, allocated at parse_header (src/parser.c:42) <- run_case (tests/main.c:61) <- main (tests/main.c:88)
        - indirect: 128 B in 2 blocks, allocated at node_new (src/list.c:17) <- parse_header (src/parser.c:44) <- run_case (tests/main.c:61)"
    `)
  })

  it('on a whole run, says which test case each leak belongs to; a RunJson works the same', () => {
    expect(failureOf(() => expect(parserHeapRun()).toHaveNoLeaks())).toMatchInlineSnapshot(`
      "expect(run).toHaveNoLeaks()

      Expected no leaks, found 3 leaks (1.2 KiB) in build/parser_tests --all:
        - definite: 1.0 KiB in 1 block in test "parses header", allocated at parse_header (src/parser.c:42) <- run_case (tests/main.c:61) <- main (tests/main.c:88)
        - indirect: 128 B in 2 blocks in test "parses header", allocated at node_new (src/list.c:17) <- parse_header (src/parser.c:44) <- run_case (tests/main.c:61)
        - possible: 40 B in 1 block, allocated at load_table (src/table.cpp:9) <- main (tests/main.c:80)"
    `)
    expect(failureOf(() => expect(parserRun()).toHaveNoLeaks())).toBe(failureOf(() => expect(parserHeapRun()).toHaveNoLeaks()))
  })

  it('fails only on the kinds asked for', () => {
    const run = parserHeapRun()
    expect(run.test('parses header')).toHaveNoLeaks({ kinds: ['possible'] })
    expect(run).not.toHaveNoLeaks({ kinds: ['possible'] })
    expect(failureOf(() => expect(run).toHaveNoLeaks({ kinds: ['possible', 'reachable'] }))).toMatchInlineSnapshot(`
      "expect(run).toHaveNoLeaks({ kinds: ["possible", "reachable"] })

      Expected no possible or reachable leaks, found 2 leaks (1.0 KiB) in build/parser_tests --all:
        - reachable: 1.0 KiB in 1 block, allocated at main (tests/main.c:90)
        - possible: 40 B in 1 block, allocated at load_table (src/table.cpp:9) <- main (tests/main.c:80)"
    `)
  })

  it('lists at most 10 records, biggest first, then says how many more', () => {
    expect(failureOf(() => expect(manyLeaksRun(13)).toHaveNoLeaks())).toMatchInlineSnapshot(`
      "expect(run).toHaveNoLeaks()

      Expected no leaks, found 13 leaks (1.4 KiB) in build/parser_tests --all:
        - definite: 208 B in 1 block, allocated at make_13 (src/make.c:22) <- main (tests/main.c:88)
        - definite: 192 B in 1 block, allocated at make_12 (src/make.c:21) <- main (tests/main.c:88)
        - definite: 176 B in 1 block, allocated at make_11 (src/make.c:20) <- main (tests/main.c:88)
        - definite: 160 B in 1 block, allocated at make_10 (src/make.c:19) <- main (tests/main.c:88)
        - definite: 144 B in 1 block, allocated at make_9 (src/make.c:18) <- main (tests/main.c:88)
        - definite: 128 B in 1 block, allocated at make_8 (src/make.c:17) <- main (tests/main.c:88)
        - definite: 112 B in 1 block, allocated at make_7 (src/make.c:16) <- main (tests/main.c:88)
        - definite: 96 B in 1 block, allocated at make_6 (src/make.c:15) <- main (tests/main.c:88)
        - definite: 80 B in 1 block, allocated at make_5 (src/make.c:14) <- main (tests/main.c:88)
        - definite: 64 B in 1 block, allocated at make_4 (src/make.c:13) <- main (tests/main.c:88)
        ...and 3 more"
    `)
  })

  it('keeps pass as it is under .not: the framework inverts it', () => {
    const run = parserHeapRun()
    expect(toHaveNoLeaks.call({ isNot: true }, run.test('parses empty')).pass).toBe(true)
    expect(toHaveNoLeaks.call({ isNot: false }, run.test('parses header')).pass).toBe(false)
  })

  it('builds its message only when asked', () => {
    const run = parserHeapRun()
    const json = run.toJSON()
    const result = toHaveNoLeaks.call({ isNot: false }, run)
    json.leaks.length = 0
    expect(result.message()).toMatch(/Expected no leaks, found [\d,]+ bytes in \d+ blocks in /)
  })

  it('rejects what is not a run, and bad options, in one clear line', () => {
    const run = parserHeapRun()
    expect(failureOf(() => expect(42).toHaveNoLeaks())).toMatchInlineSnapshot(`"Expected the received value of toHaveNoLeaks to be a heap run (from runNative), a test case (from run.test(name)) or a run JSON (schema 1), got \`42\` (number)."`)
    expect(failureOf(() => expect({ leaks: [] }).toHaveNoLeaks())).toMatchInlineSnapshot(`"Expected the received value of toHaveNoLeaks to be a heap run (from runNative), a test case (from run.test(name)) or a run JSON (schema 1), got \`{"leaks":[]}\` (object)."`)
    expect(failureOf(() => expect(run).toHaveNoLeaks({ kinds: ['lost'] } as never))).toMatchInlineSnapshot(`"Expected the \`kinds\` option of toHaveNoLeaks to be a non-empty array of "definite", "indirect", "possible", "reachable", got \`["lost"]\` (array)."`)
    expect(failureOf(() => expect(run).toHaveNoLeaks({ kind: ['definite'] } as never))).toMatchInlineSnapshot(`"Unknown option \`kind\` of toHaveNoLeaks. Known options: kinds."`)
    expect(failureOf(() => expect(run).toHaveNoLeaks('definite' as never))).toMatchInlineSnapshot(`"Expected the options of toHaveNoLeaks to be an object { kinds? }, got \`definite\` (string)."`)
    // Misuse is not a failed expectation: .not does not turn it into a pass.
    expect(() => expect(42).not.toHaveNoLeaks()).toThrow(/Expected the received value of toHaveNoLeaks/)
  })
})

import { describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { toHaveNoMemoryErrors } from '../../matchers/to-have-no-memory-errors.js'
import { at, errorsRun, failureOf, parserHeapRun } from './run-fixture.js'

describe('toHaveNoMemoryErrors', () => {
  it('passes on a test case that made no memory error, and fails under .not', () => {
    const run = errorsRun()
    expect(run.test('parses footer')).toHaveNoMemoryErrors()
    // a run without errors, and a test case of one
    expect(parserHeapRun()).toHaveNoMemoryErrors()
    expect(parserHeapRun().test('parses header')).toHaveNoMemoryErrors()
    expect(failureOf(() => expect(run.test('parses footer')).not.toHaveNoMemoryErrors())).toMatchInlineSnapshot(`
      "expect(run.test("parses footer")).not.toHaveNoMemoryErrors()

      Expected memory errors, found none in test "parses footer"."
    `)
  })

  it('fails on a test case that made errors: kind, memcheck\'s words, count, the user\'s line, the address\'s story', () => {
    const run = errorsRun()
    expect(run.test('parses header')).not.toHaveNoMemoryErrors()
    expect(failureOf(() => expect(run.test('parses header')).toHaveNoMemoryErrors())).toMatchInlineSnapshot(`
      "expect(run.test("parses header")).toHaveNoMemoryErrors()

      Expected no memory errors, found 2 errors in test "parses header":
        - invalid-read (2 times): Invalid read of size 4 at parse_header (src/parser.c:50) <- run_case (tests/main.c:61) <- main (tests/main.c:88)
            Address 0x4a4f068 is 8 bytes after a block of size 32 alloc'd at parse_header (src/parser.c:41) <- run_case (tests/main.c:61)
        - invalid-free: Invalid free() / delete / delete[] / realloc() at parse_header (src/parser.c:58) <- run_case (tests/main.c:61)
            Address 0x4a4f100 is 0 bytes inside a block of size 16 free'd at parse_header (src/parser.c:57) <- run_case (tests/main.c:61)
            Block was alloc'd at parse_header (src/parser.c:56) <- run_case (tests/main.c:61)"
    `)
  })

  it('an error on another thread: its own frames first, an address with no block', () => {
    expect(failureOf(() => expect(errorsRun().test('parses empty')).toHaveNoMemoryErrors())).toMatchInlineSnapshot(`
      "expect(run.test("parses empty")).toHaveNoMemoryErrors()

      Expected no memory errors, found 1 error in test "parses empty":
        - invalid-write: Invalid write of size 1 at fill_row (src/table.cpp:30)
            Address 0x0 is not stack'd, malloc'd or (recently) free'd"
    `)
  })

  it('on a whole run, says which test case made each error; a RunJson works the same', () => {
    const run = errorsRun()
    expect(failureOf(() => expect(run).toHaveNoMemoryErrors())).toMatchInlineSnapshot(`
      "expect(run).toHaveNoMemoryErrors()

      Expected no memory errors, found 4 errors in build/parser_tests --all:
        - mismatched-free: Mismatched free() / delete / delete [] at load_table (src/table.cpp:12) <- main (tests/main.c:80)
        - invalid-read in test "parses header" (2 times): Invalid read of size 4 at parse_header (src/parser.c:50) <- run_case (tests/main.c:61) <- main (tests/main.c:88)
            Address 0x4a4f068 is 8 bytes after a block of size 32 alloc'd at parse_header (src/parser.c:41) <- run_case (tests/main.c:61)
        - invalid-free in test "parses header": Invalid free() / delete / delete[] / realloc() at parse_header (src/parser.c:58) <- run_case (tests/main.c:61)
            Address 0x4a4f100 is 0 bytes inside a block of size 16 free'd at parse_header (src/parser.c:57) <- run_case (tests/main.c:61)
            Block was alloc'd at parse_header (src/parser.c:56) <- run_case (tests/main.c:61)
        - invalid-write in test "parses empty": Invalid write of size 1 at fill_row (src/table.cpp:30)
            Address 0x0 is not stack'd, malloc'd or (recently) free'd"
    `)
    expect(failureOf(() => expect(run.toJSON()).toHaveNoMemoryErrors())).toBe(failureOf(() => expect(run).toHaveNoMemoryErrors()))
  })

  it('fails only on the kinds asked for', () => {
    const run = errorsRun()
    expect(run.test('parses header')).toHaveNoMemoryErrors({ kinds: ['mismatched-free', 'invalid-write'] })
    expect(run.test('parses empty')).not.toHaveNoMemoryErrors({ kinds: ['invalid-write'] })
    expect(failureOf(() => expect(run).toHaveNoMemoryErrors({ kinds: ['invalid-free', 'mismatched-free'] }))).toMatchInlineSnapshot(`
      "expect(run).toHaveNoMemoryErrors({ kinds: ["invalid-free", "mismatched-free"] })

      Expected no invalid-free or mismatched-free errors, found 2 errors in build/parser_tests --all:
        - mismatched-free: Mismatched free() / delete / delete [] at load_table (src/table.cpp:12) <- main (tests/main.c:80)
        - invalid-free in test "parses header": Invalid free() / delete / delete[] / realloc() at parse_header (src/parser.c:58) <- run_case (tests/main.c:61)
            Address 0x4a4f100 is 0 bytes inside a block of size 16 free'd at parse_header (src/parser.c:57) <- run_case (tests/main.c:61)
            Block was alloc'd at parse_header (src/parser.c:56) <- run_case (tests/main.c:61)"
    `)
    expect(failureOf(() => expect(run.test('parses empty')).not.toHaveNoMemoryErrors({ kinds: ['overlap'] }))).toMatchInlineSnapshot(`
      "expect(run.test("parses empty")).not.toHaveNoMemoryErrors({ kinds: ["overlap"] })

      Expected overlap errors, found none in test "parses empty"."
    `)
  })

  it('an error from a backend that keeps no per-test list is its test case\'s by its test field; no message without a stack', () => {
    const json = errorsRun().toJSON()
    for (const t of json.tests) delete t.errors
    json.errors.push({ kind: 'invalid-free', test: 'parses footer', stack: [] })
    expect(failureOf(() => expect({ json }).toHaveNoMemoryErrors({ kinds: ['invalid-free'] }))).toContain('- invalid-free in test "parses footer": at (no stack recorded)')
  })

  it('lists at most 10 errors, in the order they were made, then says how many more', () => {
    const json = parserHeapRun().toJSON()
    json.errors = Array.from({ length: 12 }, (_, i) => ({ kind: 'invalid-write', test: null, stack: [at(`fill_${i + 1}`, 'src/fill.c', 10 + i)] }))
    const message = failureOf(() => expect(json).toHaveNoMemoryErrors())
    expect(message.split('\n').slice(2, 4)).toEqual(['Expected no memory errors, found 12 errors in build/parser_tests --all:', '  - invalid-write: at fill_1 (src/fill.c:10)'])
    expect(message.split('\n').slice(-2)).toEqual(['  - invalid-write: at fill_10 (src/fill.c:19)', '  ...and 2 more'])
  })

  it('a run heapspec could not see whole never reads as clean', () => {
    const json = parserHeapRun().toJSON()
    json.incomplete = 'the program exec()d another program'
    expect(failureOf(() => expect(json).toHaveNoMemoryErrors())).toMatchInlineSnapshot(`
      "expect(run).toHaveNoMemoryErrors()

      Expected no memory errors, but heapspec could not see the whole run of build/parser_tests --all: the program exec()d another program."
    `)
  })

  it('keeps pass as it is under .not, and builds its message only when asked', () => {
    const run = errorsRun()
    expect(toHaveNoMemoryErrors.call({ isNot: true }, run.test('parses footer')).pass).toBe(true)
    expect(toHaveNoMemoryErrors.call({ isNot: false }, run.test('parses header')).pass).toBe(false)
    const json = run.toJSON()
    const result = toHaveNoMemoryErrors.call({ isNot: false }, run)
    json.errors.length = 0
    expect(result.message()).toMatch(/found 0 errors in /)
  })

  it('rejects what is not a run, and bad options, in one clear line', () => {
    const run = errorsRun()
    expect(failureOf(() => expect(42).toHaveNoMemoryErrors())).toMatchInlineSnapshot(`"Expected the received value of toHaveNoMemoryErrors to be a heap run (from runNative), a test case (from run.test(name)) or a run JSON (schema 1), got \`42\` (number)."`)
    expect(failureOf(() => expect(run).toHaveNoMemoryErrors({ kinds: ['InvalidRead'] } as never))).toMatchInlineSnapshot(`"Expected the \`kinds\` option of toHaveNoMemoryErrors to be a non-empty array of memory error kinds in kebab case ("invalid-free", "mismatched-free", "invalid-read", "invalid-write", "uninitialised-value", "overlap", ...), got \`["InvalidRead"]\` (array)."`)
    expect(failureOf(() => expect(run).toHaveNoMemoryErrors({ kinds: [] }))).toMatch(/^Expected the `kinds` option of toHaveNoMemoryErrors to be a non-empty array/)
    expect(failureOf(() => expect(run).toHaveNoMemoryErrors({ kind: ['invalid-free'] } as never))).toMatchInlineSnapshot(`"Unknown option \`kind\` of toHaveNoMemoryErrors. Known options: kinds."`)
    expect(failureOf(() => expect(run).toHaveNoMemoryErrors('invalid-free' as never))).toMatchInlineSnapshot(`"Expected the options of toHaveNoMemoryErrors to be an object { kinds? }, got \`invalid-free\` (string)."`)
    expect(() => expect(42).not.toHaveNoMemoryErrors()).toThrow(/Expected the received value of toHaveNoMemoryErrors/)
  })
})

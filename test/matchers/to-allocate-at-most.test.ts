import { describe, expect, it } from 'vitest'
import '../../matchers/vitest.js'
import { toAllocateAtMost } from '../../matchers/to-allocate-at-most.js'
import { failureOf, parserHeapRun, parserRun } from './run-fixture.js'

describe('toAllocateAtMost', () => {
  it('passes at the limit and fails one under it, on allocations and on bytes', () => {
    const empty = parserHeapRun().test('parses empty') // 2 allocations, 96 bytes
    expect(empty).toAllocateAtMost({ allocations: 2 })
    expect(empty).toAllocateAtMost({ bytes: 96 })
    expect(empty).toAllocateAtMost({ allocations: 2, bytes: 96 })
    expect(empty).not.toAllocateAtMost({ allocations: 1 })
    expect(empty).not.toAllocateAtMost({ bytes: 95 })
    expect(empty).not.toAllocateAtMost({ allocations: 2, bytes: 95 })
    expect(failureOf(() => expect(empty).toAllocateAtMost({ allocations: 1, bytes: 96 }))).toMatchInlineSnapshot(`
      "expect(run.test("parses empty")).toAllocateAtMost({ allocations: 1, bytes: 96 })

      Expected at most 1 allocation and at most 96 bytes allocated, found 2 allocations of 96 bytes (2 frees) in test "parses empty"."
    `)
  })

  it('reads the totals of a whole run, a HeapRun or its JSON alike', () => {
    expect(parserHeapRun()).toAllocateAtMost({ allocations: 13, bytes: 3285 })
    expect(parserRun()).toAllocateAtMost({ allocations: 13, bytes: 3285 })
    expect(failureOf(() => expect(parserRun()).toAllocateAtMost({ bytes: 2048 }))).toMatchInlineSnapshot(`
      "expect(run).toAllocateAtMost({ bytes: 2048 })

      Expected at most 2,048 bytes allocated, found 13 allocations of 3,285 bytes (8 frees) in build/parser_tests --all."
    `)
  })

  it('says what the limit was under .not, and keeps pass as it is', () => {
    const empty = parserHeapRun().test('parses empty')
    expect(failureOf(() => expect(empty).not.toAllocateAtMost({ allocations: 10, bytes: 4096 }))).toMatchInlineSnapshot(`
      "expect(run.test("parses empty")).not.toAllocateAtMost({ allocations: 10, bytes: 4096 })

      Expected more than 10 allocations or more than 4,096 bytes allocated, found 2 allocations of 96 bytes (2 frees) in test "parses empty"."
    `)
    expect(toAllocateAtMost.call({ isNot: true }, empty, { allocations: 10 }).pass).toBe(true)
  })

  it('rejects missing, unknown and negative limits', () => {
    const run = parserHeapRun()
    expect(failureOf(() => expect(run).toAllocateAtMost({ allocations: Number.NaN }))).toMatchInlineSnapshot(`"Expected the \`allocations\` limit of toAllocateAtMost to be a non-negative number, got \`NaN\` (number)."`)
    expect(failureOf(() => expect(run).toAllocateAtMost({ blocks: 1 } as never))).toMatchInlineSnapshot(`"Unknown option \`blocks\` of toAllocateAtMost. Known options: allocations, bytes."`)
    expect(failureOf(() => expect(run).toAllocateAtMost(10 as never))).toMatchInlineSnapshot(`"Expected the argument of toAllocateAtMost to be an object { allocations?, bytes? }, got \`10\` (number)."`)
  })
})

import { describe, expect, it } from 'vitest'
import { allocationSite, humanBytes, isUserFrame } from '../../matchers/format.js'
import { toSubject } from '../../matchers/subject.js'
import { at, parserHeapRun } from './run-fixture.js'

describe('matcher message helpers', () => {
  it('writes sizes the way the report reads them', () => {
    expect([0, 1, 1023, 1024, 1152, 1536 * 1024, 3 * 1024 ** 3].map(humanBytes)).toEqual(['0 B', '1 B', '1023 B', '1.0 KiB', '1.1 KiB', '1.5 MiB', '3.0 GiB'])
  })

  it("skips frames outside the user's code: system libraries, system headers, no debug info", () => {
    expect(isUserFrame(at('parse', 'src/parser.c', 42))).toBe(true)
    expect(isUserFrame(at('parse', '/home/me/proj/src/parser.c', 42))).toBe(true)
    expect(isUserFrame(at('__strdup', './string/strdup.c', 42, '/lib/x86_64-linux-gnu/libc.so.6'))).toBe(false)
    expect(isUserFrame(at('operator new', null, null, '/usr/lib/x86_64-linux-gnu/libstdc++.so.6'))).toBe(false)
    expect(isUserFrame(at('_dl_start', 'rtld.c', 500, '/lib64/ld-linux-x86-64.so.2'))).toBe(false)
    expect(isUserFrame(at('std::vector<int>::push_back', '/usr/include/c++/12/bits/stl_vector.h', 1287))).toBe(false)
    expect(isUserFrame(at('_start', null, null))).toBe(false)
  })

  it('shows the first user frame and the user frames after it, or the first frame when there is none', () => {
    const stack = [at('__strdup', './string/strdup.c', 42, '/lib/x86_64-linux-gnu/libc.so.6'), at('a', 'a.c', 1), at('b', 'b.c', 2), at('c', 'c.c', 3), at('d', 'd.c', 4)]
    expect(allocationSite(stack)).toBe('a (a.c:1) <- b (b.c:2) <- c (c.c:3)')
    expect(allocationSite([at('operator new', null, null, '/usr/lib/x86_64-linux-gnu/libstdc++.so.6')])).toBe('operator new (/usr/lib/x86_64-linux-gnu/libstdc++.so.6)')
    expect(allocationSite([])).toBe('(no stack recorded)')
  })

  it('takes a run by shape, so a run from the other module format (ESM, CommonJS) is accepted', () => {
    const run = parserHeapRun()
    const lookalike = { json: run.toJSON(), stdout: '', stderr: '' }
    expect(toSubject(lookalike, 'toHaveNoLeaks')).toMatchObject({ expression: 'run', where: 'build/parser_tests --all', testName: null })
    expect(toSubject({ ...run.test('parses header') }, 'toHaveNoLeaks')).toMatchObject({ expression: 'run.test("parses header")', where: 'test "parses header"' })
  })
})

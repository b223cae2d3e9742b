import { readFileSync } from 'node:fs'
import { describe, it, expect } from 'vitest'
import { CaptureFailedError } from '../../src/errors.js'
import type { Frame } from '../../src/model/types.js'
import { errorKindName, parseMemcheckXml, type MemcheckXmlOptions } from '../../src/capture/valgrind/xml.js'

// Saved from real memcheck runs (valgrind 3.19) of debugee/ programs, with the Valgrind backend's
// flags, in a checkout at /work/main: that is the cwd source paths are made relative to.
const fixture = (name: string): string => readFileSync(new URL(`../fixtures/valgrind/${name}`, import.meta.url), 'utf8')
const options: MemcheckXmlOptions = { cwd: '/work/main', source: 'memcheck.xml' }

/** fn (file:line) of each frame: what a reader of the report sees. */
const where = (stack: Frame[]): string[] => stack.map((f) => `${f.fn} (${f.file}:${f.line})`)

/** The text split into chunks of `size` bytes, as a file stream would deliver it. */
async function* chunks(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text, 'utf8')
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
}

/** The line and column (1-based) just past the end of `text`, where a parser stops reading it. */
function endOf(text: string): { line: number; column: number } {
  const lines = text.split('\n')
  return { line: lines.length, column: lines.at(-1)!.length + 1 }
}

describe('parseMemcheckXml: a leak run (debugee/indirect)', () => {
  it('reads every loss record with its direct bytes, blocks and stack, caller of malloc first', async () => {
    const xml = await parseMemcheckXml(fixture('indirect.xml'), options)
    expect(xml.pid).toBe(11960)
    expect(xml.finished).toBe(true)
    expect(xml.complete).toBe(true)
    expect(xml.errors).toEqual([])
    expect(xml.fatalSignal).toBeNull()
    expect(xml.leaks.map((l) => ({ kind: l.kind, bytes: l.bytes, blocks: l.blocks, test: l.test, at: where(l.stack) }))).toEqual([
      { kind: 'indirect', bytes: 48, blocks: 1, test: null, at: ['new_pair (debugee/indirect.c:65)', 'make_cycle (debugee/indirect.c:74)', 'main (debugee/indirect.c:88)'] },
      // memcheck's text says "96 (48 direct, 48 indirect) bytes"; <leakedbytes> says 96. The record holds 48.
      { kind: 'definite', bytes: 48, blocks: 1, test: null, at: ['new_pair (debugee/indirect.c:65)', 'make_cycle (debugee/indirect.c:73)', 'main (debugee/indirect.c:88)'] },
      { kind: 'indirect', bytes: 128, blocks: 4, test: null, at: ['new_node (debugee/indirect.c:49)', 'build_list (debugee/indirect.c:59)', 'main (debugee/indirect.c:85)'] },
      { kind: 'definite', bytes: 32, blocks: 1, test: null, at: ['new_node (debugee/indirect.c:49)', 'build_list (debugee/indirect.c:60)', 'main (debugee/indirect.c:85)'] },
    ])
  })

  it('keeps the object and program counter of each frame', async () => {
    const xml = await parseMemcheckXml(fixture('indirect.xml'), options)
    expect(xml.leaks[0]!.stack[0]).toEqual({
      fn: 'new_pair',
      file: 'debugee/indirect.c',
      line: 65,
      object: '/work/main/debugee/build/indirect',
      pc: '0x1091f5',
    })
  })

  it("carries memcheck's generated suppression on each leak, ready to paste", async () => {
    const xml = await parseMemcheckXml(fixture('indirect.xml'), options)
    expect(xml.leaks[1]!.suppression).toBe(
      ['{', '   <insert_a_suppression_name_here>', '   Memcheck:Leak', '   match-leak-kinds: definite', '   fun:malloc', '   fun:new_pair', '   fun:make_cycle', '   fun:main', '}'].join('\n'),
    )
    expect(xml.leaks.every((l) => l.suppression?.startsWith('{\n'))).toBe(true)
  })

  it('shows a source path outside the working directory as absolute', async () => {
    const xml = await parseMemcheckXml(fixture('indirect.xml'), { ...options, cwd: '/somewhere/else' })
    expect(xml.leaks[0]!.stack[0]!.file).toBe('/work/main/debugee/indirect.c')
  })

  it('reads a stream in small chunks, a multi-byte character split across two, like the whole text', async () => {
    const text = fixture('indirect.xml').replace('<fn>new_pair</fn>', '<fn>new_pair_ü€</fn>')
    const whole = await parseMemcheckXml(text, options)
    const streamed = await parseMemcheckXml(chunks(text, 7), options)
    expect(streamed).toEqual(whole)
    expect(streamed.leaks[0]!.stack[0]!.fn).toBe('new_pair_ü€')
  })
})

describe('parseMemcheckXml: C++ (debugee/cxx)', () => {
  it("drops valgrind's operator new replacement, so the first frame is its caller", async () => {
    const xml = await parseMemcheckXml(fixture('cxx.xml'), options)
    expect(xml.leaks.map((l) => [l.kind, l.bytes, l.blocks, where(l.stack)])).toEqual([
      ['definite', 40, 1, ['make_ints() (debugee/cxx.cpp:72)', 'main (debugee/cxx.cpp:112)']],
      ['definite', 48, 1, ['make_record() (debugee/cxx.cpp:66)', 'main (debugee/cxx.cpp:111)']],
      ['definite', 64, 1, ['make_aligned() (debugee/cxx.cpp:78)', 'main (debugee/cxx.cpp:113)']],
    ])
  })
})

describe('parseMemcheckXml: memory errors (debugee/errors)', () => {
  it('reads each error with its kind, what, stack and auxiliary stacks, in the order found', async () => {
    const xml = await parseMemcheckXml(fixture('errors.xml'), options)
    expect(xml.leaks).toEqual([])
    expect(xml.finished).toBe(true)
    // each once (memcheck's <errorcounts>)
    expect(xml.errors.map((e) => e.count)).toEqual([1, 1, 1, 1, 1, 1])
    expect(xml.errors.map((e) => ({ kind: e.kind, what: e.what, at: where(e.stack), aux: e.auxStacks?.map((a) => [a.what, where(a.stack)]) }))).toEqual([
      {
        kind: 'mismatched-free',
        what: 'Mismatched free() / delete / delete []',
        at: ['mismatched_free() (debugee/errors.cpp:36)', 'main (debugee/errors.cpp:77)'],
        aux: [["Address 0x4d6dc80 is 0 bytes inside a block of size 4 alloc'd", ['mismatched_free() (debugee/errors.cpp:34)', 'main (debugee/errors.cpp:77)']]],
      },
      {
        kind: 'invalid-free',
        what: 'Invalid free() / delete / delete[] / realloc()',
        at: ['double_free() (debugee/errors.cpp:43)', 'main (debugee/errors.cpp:78)'],
        aux: [
          ["Address 0x4d6dcd0 is 0 bytes inside a block of size 16 free'd", ['double_free() (debugee/errors.cpp:42)', 'main (debugee/errors.cpp:78)']],
          ["Block was alloc'd at", ['double_free() (debugee/errors.cpp:41)', 'main (debugee/errors.cpp:78)']],
        ],
      },
      {
        kind: 'invalid-read',
        what: 'Invalid read of size 4',
        at: ['invalid_read() (debugee/errors.cpp:50)', 'main (debugee/errors.cpp:79)'],
        aux: [["Address 0x4d6dd30 is 0 bytes after a block of size 16 alloc'd", ['invalid_read() (debugee/errors.cpp:48)', 'main (debugee/errors.cpp:79)']]],
      },
      {
        kind: 'invalid-write',
        what: 'Invalid write of size 1',
        at: ['invalid_write() (debugee/errors.cpp:57)', 'main (debugee/errors.cpp:80)'],
        aux: [["Address 0x4d6dd7a is 0 bytes after a block of size 10 alloc'd", ['invalid_write() (debugee/errors.cpp:56)', 'main (debugee/errors.cpp:80)']]],
      },
      {
        kind: 'uninitialised-value',
        what: 'Conditional jump or move depends on uninitialised value(s)',
        at: ['uninitialised_branch() (debugee/errors.cpp:64)', 'main (debugee/errors.cpp:81)'],
        aux: undefined,
      },
      {
        // The strncpy frame is valgrind's replacement: the stack starts at the caller.
        kind: 'overlap',
        what: 'Source and destination overlap in strncpy(0x10c067, 0x10c065, 5)',
        at: ['overlapping_copy() (debugee/errors.cpp:72)', 'main (debugee/errors.cpp:82)'],
        aux: undefined,
      },
    ])
  })

  it('names the kinds memcheck has beyond the common ones in kebab case', () => {
    expect(['InvalidJump', 'SyscallParam', 'UninitValue', 'UninitCondition', 'ClientCheck', 'InvalidMemPool', 'FishyValue', 'ReallocSizeZero'].map(errorKindName)).toEqual([
      'invalid-jump',
      'syscall-param',
      'uninitialised-value',
      'uninitialised-value',
      'client-check',
      'invalid-mem-pool',
      'fishy-value',
      'realloc-size-zero',
    ])
  })
})

describe('parseMemcheckXml: a crash (debugee/crash)', () => {
  it('reports the fatal signal, the error that caused it, and the leak check memcheck still ran', async () => {
    const xml = await parseMemcheckXml(fixture('crash.xml'), options)
    expect(xml.fatalSignal).toEqual({ number: 11, name: 'SIGSEGV' })
    expect(xml.finished).toBe(true)
    expect(xml.errors).toEqual([
      {
        kind: 'invalid-write',
        what: 'Invalid write of size 4',
        test: null,
        stack: [
          { fn: 'boom', file: 'debugee/crash.c', line: 39, object: '/work/main/debugee/build/crash', pc: '0x1091a3' },
          { fn: 'main', file: 'debugee/crash.c', line: 46, object: '/work/main/debugee/build/crash', pc: '0x1091c8' },
        ],
        // An auxiliary line without a stack of its own.
        auxStacks: [{ what: "Address 0x0 is not stack'd, malloc'd or (recently) free'd", stack: [] }],
        // <errorcounts>: how often it happened
        count: 1,
      },
    ])
    expect(xml.leaks.map((l) => [l.kind, l.bytes, l.blocks, where(l.stack)[0]])).toEqual([
      ['definite', 128, 1, 'leak (debugee/crash.c:30)'],
      ['definite', 256, 1, 'leak (debugee/crash.c:30)'],
    ])
  })
})

describe('parseMemcheckXml: bad input', () => {
  const good = fixture('indirect.xml')

  const failure = async (input: string | AsyncIterable<Uint8Array>, extra: Partial<MemcheckXmlOptions> = {}): Promise<CaptureFailedError> => {
    const error = await parseMemcheckXml(input, { ...options, ...extra }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(CaptureFailedError)
    return error as CaptureFailedError
  }

  it('names where malformed XML breaks', async () => {
    const bad = good.replace('<leakedbytes>48</leakedbytes>', '<leakedbytes>48</leakedbyte>')
    const line = bad.split('\n').findIndex((l) => l.includes('</leakedbyte>')) + 1
    expect(line).toBe(58)
    expect((await failure(bad)).message).toBe(
      "heapspec: memcheck's XML output (memcheck.xml) is malformed at line 58, column 33: unexpected close tag. " +
        "Something other than memcheck wrote into it, or the file is damaged; run with HEAPSPEC_DEBUG=1 to see valgrind's log.",
    )
  })

  it('names where truncated XML ends, whole or streamed, and invents nothing', async () => {
    const cut = good.slice(0, good.indexOf('<fn>new_pair</fn>') + '<fn>new_'.length)
    const end = endOf(cut)
    expect(end).toEqual({ line: 70, column: 15 })
    const message =
      "heapspec: memcheck's XML output (memcheck.xml) is truncated: it ends at line 70, column 15 inside <fn>, without </valgrindoutput>. " +
      "valgrind stopped before it finished writing; run with HEAPSPEC_DEBUG=1 to see its log."
    expect((await failure(cut)).message).toBe(message)
    expect((await failure(chunks(cut, 64))).message).toBe(message)
  })

  it('treats output cut between two records as truncated too', async () => {
    const cut = good.slice(0, good.indexOf('</error>') + '</error>'.length)
    expect(endOf(cut)).toEqual({ line: 114, column: 9 })
    expect((await failure(cut)).message).toMatch(/is truncated: it ends at line 114, column 9 inside <valgrindoutput>, without <\/valgrindoutput>\./)
  })

  it('reports empty output', async () => {
    expect((await failure('')).message).toBe(
      "heapspec: memcheck's XML output (memcheck.xml) is empty or has no <valgrindoutput> element (it ends at line 1, column 1). " +
        "valgrind did not get to run memcheck; run with HEAPSPEC_DEBUG=1 to see its log.",
    )
  })

  it('reports text that is not XML at all', async () => {
    expect((await failure('==123== Memcheck, a memory error detector\n')).message).toMatch(
      /^heapspec: memcheck's XML output \(memcheck\.xml\) is malformed at line 2, column 1: text data outside of root node\. /,
    )
  })

  it('rejects a number that is not one, with its position', async () => {
    expect((await failure(good.replace('<leakedbytes>48</leakedbytes>', '<leakedbytes>4x8</leakedbytes>'))).message).toBe(
      "heapspec: memcheck's XML output (memcheck.xml) has <leakedbytes> `4x8`, not a whole number, at line 58, column 18. " +
        "heapspec reads memcheck's XML protocol 4 (valgrind 3.13 or later): check valgrind's version, and that nothing else writes into the file.",
    )
  })

  it('rejects a loss record whose text and figures disagree', async () => {
    expect((await failure(good.replace('<leakedbytes>48</leakedbytes>', '<leakedbytes>49</leakedbytes>'))).message).toMatch(
      /has a loss record whose text \(`48 bytes in 1 blocks are indirectly lost in loss record 1 of 4`\) disagrees with <leakedbytes> 49 \/ <leakedblocks> 1 at line 56, column 10\./,
    )
  })

  it("rejects another tool's output", async () => {
    expect((await failure(good.replace('<protocoltool>memcheck</protocoltool>', '<protocoltool>helgrind</protocoltool>'))).message).toMatch(
      /has output of the tool `helgrind` where memcheck's was expected at line 6, column 15\./,
    )
  })

  it('rejects an unknown leak kind rather than guessing one', async () => {
    expect((await failure(good.replace('<kind>Leak_IndirectlyLost</kind>', '<kind>Leak_Misplaced</kind>'))).message).toMatch(
      /has the unknown leak kind `Leak_Misplaced` at line 52, column 8\./,
    )
  })

  it('with allowTruncated, returns only the records that were complete', async () => {
    const errors = fixture('errors.xml')
    let at = 0
    for (let i = 0; i < 2; i++) at = errors.indexOf('</error>', at) + '</error>'.length
    const cut = errors.slice(0, errors.indexOf('<frame>', at))
    const xml = await parseMemcheckXml(cut, { ...options, allowTruncated: true })
    expect(xml.complete).toBe(false)
    expect(xml.finished).toBe(false)
    expect(xml.pid).toBe(11965)
    expect(xml.errors.map((e) => e.kind)).toEqual(['mismatched-free', 'invalid-free'])
    expect(xml.leaks).toEqual([])
  })
})

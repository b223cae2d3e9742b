import { join } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { HeapRun } from '../../src/run.js'
import { emptyLeakSummary, type Frame, type LeakRecord, type RunJson } from '../../src/model/types.js'

const PROGRAM = join(process.cwd(), 'build', 'parser_tests')
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6'

/** A frame of the test program. */
export function at(fn: string, file: string | null, line: number | null, object = PROGRAM): Frame {
  return { fn, file, line, object }
}

const START: Frame[] = [at('__libc_start_call_main', './csu/../sysdeps/nptl/libc_start_call_main.h', 58, LIBC), at('_start', null, null)]

/** The run of a native suite with two test cases, as a backend would report it (hand-written, schema 1). */
export function parserRun(): RunJson {
  const leaks: LeakRecord[] = [
    {
      kind: 'indirect',
      bytes: 128,
      blocks: 2,
      test: 'parses header',
      stack: [at('node_new', 'src/list.c', 17), at('parse_header', 'src/parser.c', 44), at('run_case', 'tests/main.c', 61), at('main', 'tests/main.c', 88), ...START],
    },
    {
      kind: 'definite',
      bytes: 1024,
      blocks: 1,
      test: 'parses header',
      // strdup in libc (with glibc's debug info), called from the user's parser.
      stack: [at('__strdup', './string/strdup.c', 42, LIBC), at('parse_header', 'src/parser.c', 42), at('run_case', 'tests/main.c', 61), at('main', 'tests/main.c', 88), ...START],
    },
    {
      kind: 'possible',
      bytes: 40,
      blocks: 1,
      test: null,
      // libstdc++'s allocator template, compiled into the program from the system headers.
      stack: [at('std::__new_allocator<int>::allocate', '/usr/include/c++/12/bits/new_allocator.h', 137), at('load_table', 'src/table.cpp', 9), at('main', 'tests/main.c', 80), ...START],
    },
    { kind: 'reachable', bytes: 1024, blocks: 1, test: null, stack: [at('_IO_file_doallocate', './libio/filedoalloc.c', 101, LIBC), at('main', 'tests/main.c', 90), ...START] },
  ]
  const parsesHeader = emptyLeakSummary()
  parsesHeader.definite = { bytes: 1024, blocks: 1 }
  parsesHeader.indirect = { bytes: 128, blocks: 2 }
  const total = emptyLeakSummary()
  total.definite = { bytes: 1024, blocks: 1 }
  total.indirect = { bytes: 128, blocks: 2 }
  total.possible = { bytes: 40, blocks: 1 }
  total.reachable = { bytes: 1024, blocks: 1 }
  return {
    schema: 1,
    backend: 'gdb',
    program: { command: [PROGRAM, '--all'], exitCode: 0, signal: null },
    totals: { allocations: 13, frees: 8, bytesAllocated: 3285 },
    inUseAtExit: { bytes: 2216, blocks: 5 },
    leakSummary: total,
    leaks,
    tests: [
      { name: 'parses header', allocations: 5, frees: 2, bytesAllocated: 1248, leakSummary: parsesHeader },
      { name: 'parses empty', allocations: 2, frees: 2, bytesAllocated: 96, leakSummary: emptyLeakSummary() },
    ],
    errors: [],
  } satisfies RunJson
}

/** The same run as the API returns it. */
export function parserHeapRun(): HeapRun {
  return new HeapRun(parserRun())
}

/** A run that leaked one block from each of `count` call sites, to see the record list cut short. */
export function manyLeaksRun(count: number): HeapRun {
  const json = parserRun()
  json.leaks = Array.from({ length: count }, (_, i) => ({
    kind: 'definite' as const,
    bytes: 16 * (i + 1),
    blocks: 1,
    test: null,
    stack: [at(`make_${i + 1}`, 'src/make.c', 10 + i), at('main', 'tests/main.c', 88)],
  }))
  json.leakSummary = emptyLeakSummary()
  json.leakSummary.definite = { bytes: json.leaks.reduce((s, l) => s + l.bytes, 0), blocks: count }
  return new HeapRun(json)
}


/** The message an assertion fails with, colours stripped; throws if it passes. */
export function failureOf(assertion: () => void): string {
  try {
    assertion()
  } catch (error) {
    return stripVTControlCharacters((error as Error).message)
  }
  throw new Error('expected the assertion to fail, and it passed')
}

/**
 * The parser run with memory errors, as the valgrind backend reports them: one made before any
 * test case, two in "parses header" (the invalid read twice), one on a thread in "parses empty".
 */
export function errorsRun(): HeapRun {
  const json = parserRun()
  const read = {
    kind: 'invalid-read',
    what: 'Invalid read of size 4',
    stack: [at('parse_header', 'src/parser.c', 50), at('run_case', 'tests/main.c', 61), at('main', 'tests/main.c', 88), ...START],
    auxStacks: [
      {
        what: "Address 0x4a4f068 is 8 bytes after a block of size 32 alloc'd",
        stack: [at('malloc', null, null, '/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so'), at('parse_header', 'src/parser.c', 41), at('run_case', 'tests/main.c', 61)],
      },
    ],
  }
  const free = {
    kind: 'invalid-free',
    what: 'Invalid free() / delete / delete[] / realloc()',
    stack: [at('parse_header', 'src/parser.c', 58), at('run_case', 'tests/main.c', 61)],
    auxStacks: [
      { what: "Address 0x4a4f100 is 0 bytes inside a block of size 16 free'd", stack: [at('parse_header', 'src/parser.c', 57), at('run_case', 'tests/main.c', 61)] },
      { what: "Block was alloc'd at", stack: [at('parse_header', 'src/parser.c', 56), at('run_case', 'tests/main.c', 61)] },
    ],
  }
  const write = {
    kind: 'invalid-write',
    what: 'Invalid write of size 1',
    stack: [at('fill_row', 'src/table.cpp', 30), at('start_thread', './nptl/pthread_create.c', 442, LIBC)],
    auxStacks: [{ what: "Address 0x0 is not stack'd, malloc'd or (recently) free'd", stack: [] }],
  }
  const mismatch = { kind: 'mismatched-free', what: 'Mismatched free() / delete / delete []', stack: [at('load_table', 'src/table.cpp', 12), at('main', 'tests/main.c', 80)] }
  json.errors = [
    { ...mismatch, test: null, count: 1 },
    { ...read, test: 'parses header', count: 2 },
    { ...free, test: 'parses header', count: 1 },
    { ...write, test: 'parses empty', count: 1 },
  ]
  json.tests[0]!.errors = [
    { ...read, test: 'parses header', count: 2 },
    { ...free, test: 'parses header', count: 1 },
  ]
  json.tests[1]!.errors = [{ ...write, test: 'parses empty', count: 1 }]
  json.tests.push({ name: 'parses footer', allocations: 0, frees: 0, bytesAllocated: 0, leakSummary: emptyLeakSummary(), errors: [] })
  return new HeapRun(json)
}

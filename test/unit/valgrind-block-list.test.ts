import { describe, expect, it } from 'vitest'
import { parseBlockListing, parseShownRecords } from '../../src/capture/valgrind/block-list.js'
import { CaptureFailedError } from '../../src/errors.js'

// Saved from memcheck 3.19 (monitor commands with `v.set log_output`) on debugee/build/tests at
// the end of test_thread_leak, with a suppression for worker's leak: record 5 is suppressed, so
// the full leak search does not show it, but block_list still lists its block.
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')

const SHOWN = lines(`==27463== 32 bytes in 1 blocks are indirectly lost in loss record 1 of 7
==27463==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==27463==    by 0x109239: node_new (tests.c:55)
==27463==    by 0x109260: test_indirect (tests.c:62)
==27463==    by 0x10936C: main (tests.c:102)
==27463== 
==27463== 96 (32 direct, 64 indirect) bytes in 1 blocks are definitely lost in loss record 6 of 7
==27463==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==27463==    by 0x109239: node_new (tests.c:55)
==27463==    by 0x109270: test_indirect (tests.c:62)
==27463==    by 0x10936C: main (tests.c:102)
==27463== 
==27463== LEAK SUMMARY:
==27463==    definitely lost: 128 bytes in 3 blocks
==27463==         suppressed: 64 bytes in 1 blocks
==27463== `)

const BLOCKS = lines(`==27463== 32 bytes in 1 blocks are indirectly lost in loss record 1 of 7
==27463==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==27463==    by 0x109239: node_new (tests.c:55)
==27463==    by 0x109260: test_indirect (tests.c:62)
==27463==    by 0x10936C: main (tests.c:102)
==27463== 0x4A401D0[32]
==27463== 64 bytes in 1 blocks are definitely lost in loss record 5 of 7
==27463==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==27463==    by 0x1091AE: leak (tests.c:35)
==27463==    by 0x109295: worker (tests.c:69)
==27463==    by 0x48E41F4: start_thread (pthread_create.c:442)
==27463==    by 0x4963B4F: clone (clone.S:100)
==27463== 0x4A40440[64]
==27463== 96 (32 direct, 64 indirect) bytes in 1 blocks are definitely lost in loss record 6 of 7
==27463==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==27463==    by 0x109239: node_new (tests.c:55)
==27463==    by 0x109270: test_indirect (tests.c:62)
==27463==    by 0x10936C: main (tests.c:102)
==27463== 0x4A40290[32]
==27463==   0x4A40230[32] indirect loss record 2
==27463==     0x4A401D0[32] indirect loss record 1
==27463== 272 (+272) bytes in 1 (+1) blocks are possibly lost in loss record 7 of 7
==27463==    at 0x48465EF: calloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==27463==    by 0x4010CB2: calloc (rtld-malloc.h:44)
==27463==    by 0x4010CB2: allocate_dtv (dl-tls.c:401)
==27463==    by 0x401171D: _dl_allocate_tls (dl-tls.c:670)
==27463== 0x4A402F0[272]`)

describe('parseBlockListing', () => {
  it("reads each record's kind, stack (after valgrind's allocator) and blocks; the indented ones belong to other records", () => {
    const { records: listed } = parseBlockListing(SHOWN, BLOCKS, true, 'listing 3')
    const records = listed.map(({ frames: _frames, allocator: _allocator, ...record }) => record)
    // the log's frames stand for a record memcheck's XML never lists (one freed by exit)
    expect(listed[3]!.allocator).toBe('calloc')
    expect(listed[3]!.frames!.map((f) => `${f.fn} ${f.file}:${f.line} ${f.object}`)).toEqual(['calloc rtld-malloc.h:44 null', 'allocate_dtv dl-tls.c:401 null', '_dl_allocate_tls dl-tls.c:670 null'])
    expect(records).toEqual([
      { number: 1, kind: 'indirect', stack: '0x109239,0x109260,0x10936c', shown: true, blocks: [{ address: 0x4a401d0, size: 32 }] },
      // not in the full search's output: suppressed
      { number: 5, kind: 'definite', stack: '0x1091ae,0x109295,0x48e41f4,0x4963b4f', shown: false, blocks: [{ address: 0x4a40440, size: 64 }] },
      { number: 6, kind: 'definite', stack: '0x109239,0x109270,0x10936c', shown: true, blocks: [{ address: 0x4a40290, size: 32 }] },
      // deltas after an earlier search; an inlined frame repeats its address, as in the XML
      { number: 7, kind: 'possible', stack: '0x4010cb2,0x4010cb2,0x401171d', shown: false, blocks: [{ address: 0x4a402f0, size: 272 }] },
    ])
  })

  it('takes every record as shown after a summary search, which shows none', () => {
    const { records } = parseBlockListing([], BLOCKS, false, 'listing 0')
    expect(records.map((r) => r.shown)).toEqual([true, true, true, true])
  })

  it('reads an empty heap, before or after the first block', () => {
    const empty = ['==9== All heap blocks were freed -- no leaks are possible', "==9== Can't print block list : no valid leak search result", 'invalid loss record nr']
    expect(parseBlockListing(empty.slice(0, 1), empty.slice(1), true, 'listing 0')).toEqual({ records: [] })
  })

  it('keeps a frame in valgrind’s allocator that comes after the program’s (operator new called by the program is not one)', () => {
    const text = lines(`==9== 4 bytes in 1 blocks are still reachable in loss record 1 of 1
==9==    at 0x4842F95: operator new(unsigned long) (vg_replace_malloc.c:422)
==9==    by 0x10A1B2: make (cxx.cpp:9)
==9== 0x4DF4C80[4]`)
    expect(parseBlockListing([], text, false, 'x').records[0]).toMatchObject({ kind: 'reachable', stack: '0x10a1b2' })
  })

  it('fails clearly on a record whose blocks do not add up, or on a line it cannot read', () => {
    const failure = (blocks: string[]): string => {
      try {
        parseBlockListing([], blocks, false, 'listing 4')
      } catch (error) {
        expect(error).toBeInstanceOf(CaptureFailedError)
        return (error as Error).message
      }
      throw new Error('parsed')
    }
    expect(failure(BLOCKS.slice(0, 5))).toBe(
      "heapspec: memcheck's block listing (listing 4) has 0 blocks under a record of 1: `loss record 1`. heapspec reads the block_list output of valgrind 3.19 or later; run with HEAPSPEC_DEBUG=1 to see valgrind's log.",
    )
    expect(failure(['==9== something else'])).toMatch(/^heapspec: memcheck's block listing \(listing 4\) has a line before any loss record: `something else`\./)
  })
})

describe('parseShownRecords', () => {
  it("reads each shown record's number and its stack after valgrind's allocator, and stops at the summary", () => {
    expect(parseShownRecords(SHOWN)).toEqual([
      { number: 1, pcs: [0x109239, 0x109260, 0x10936c] },
      { number: 6, pcs: [0x109239, 0x109270, 0x10936c] },
    ])
  })

  it('reads record numbers past 999, which memcheck writes with commas (a Node heap)', () => {
    const text = lines(`==9== 9 bytes in 1 blocks are definitely lost in loss record 1,471 of 2,819
==9==    at 0x48407B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==9==    by 0xBC7727C: join_strings (addon.c:27)
==9==    by 0xBC77361: leaky_join (addon.c:45)
==9== 0x1A0C2B40[9]`)
    expect(parseShownRecords(text)).toEqual([{ number: 1471, pcs: [0xbc7727c, 0xbc77361] }])
    expect(parseBlockListing(text, text, true, 'x').records.map(({ frames: _f, allocator: _a, ...r }) => r)).toEqual([
      { number: 1471, kind: 'definite', stack: '0xbc7727c,0xbc77361', shown: true, blocks: [{ address: 0x1a0c2b40, size: 9 }] },
    ])
  })
})

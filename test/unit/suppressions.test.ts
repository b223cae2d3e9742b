import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadSuppressions } from '../../src/capture/suppression-files.js'
import { BadOptionError } from '../../src/errors.js'
import { applySuppressions, findSuppression, formatSuppression, globMatches, matchFrames, parseSuppressions } from '../../src/model/suppressions.js'
import type { Frame } from '../../src/model/types.js'

const frame = (fn: string | null, object = '/prog', file: string | null = 'prog.c', line: number | null = 1): Frame => ({ fn, file, line, object })

const FILE = `
# comments and blank lines are skipped
{
   dtv
   Memcheck:Leak
   match-leak-kinds: possible
   fun:calloc
   ...
   fun:_dl_allocate_tls
}
{
   any-kind-by-object
   Memcheck:Leak
   fun:*alloc
   obj:/usr/lib/libfoo.so.?
}
{
   by-source
   Memcheck:Leak
   match-leak-kinds: definite,indirect
   fun:_Znwm
   src:parser.c:42
   fun:main
}
{
   not-a-leak
   Memcheck:Param
   write(buf)
   fun:write
}
`

describe('memcheck suppression files', () => {
  const supps = parseSuppressions(FILE, 'test.supp')

  it('reads names, kinds, leak kinds (every kind when absent) and frames', () => {
    expect(supps.map((s) => [s.name, s.kind, s.leakKinds.join(','), s.frames.map((f) => `${f.type}:${f.pattern}${f.line ? `:${f.line}` : ''}`).join(' ')])).toEqual([
      ['dtv', 'Memcheck:Leak', 'possible', 'fun:calloc ...: fun:_dl_allocate_tls'],
      ['any-kind-by-object', 'Memcheck:Leak', 'definite,indirect,possible,reachable', 'fun:*alloc obj:/usr/lib/libfoo.so.?'],
      ['by-source', 'Memcheck:Leak', 'definite,indirect', 'fun:_Znwm src:parser.c:42 fun:main'],
      ['not-a-leak', 'Memcheck:Param', 'definite,indirect,possible,reachable', 'fun:write'],
    ])
  })

  it('globs: * any run (none included), ? one character, nothing else special', () => {
    expect(globMatches('*alloc', 'calloc')).toBe(true)
    expect(globMatches('*alloc', 'alloc')).toBe(true)
    expect(globMatches('mall?c', 'malloc')).toBe(true)
    expect(globMatches('mall?c', 'mallc')).toBe(false)
    expect(globMatches('a*b*c', 'axxbyyc')).toBe(true)
    expect(globMatches('a.c', 'abc')).toBe(false)
  })

  it('matches from the allocator frame, `...` standing for any number of frames, frames past the last named ignored', () => {
    const dtv = matchFrames(null, [frame('allocate_dtv'), frame('_dl_allocate_tls'), frame('pthread_create'), frame('main')])
    expect(findSuppression(supps, 'possible', dtv)?.name).toBe('dtv')
    // the wrong kind, or the allocator named differently
    expect(findSuppression(supps, 'definite', dtv)).toBeUndefined()
    expect(findSuppression(supps, 'possible', matchFrames('realloc', [frame('allocate_dtv'), frame('_dl_allocate_tls')]))).toBeUndefined()
    // `...` matches zero frames too
    expect(findSuppression(supps, 'possible', matchFrames(null, [frame('_dl_allocate_tls')]))?.name).toBe('dtv')
    // obj: on the object's path
    expect(findSuppression(supps, 'reachable', matchFrames(null, [frame('f', '/usr/lib/libfoo.so.1')]))?.name).toBe('any-kind-by-object')
    // a stack shorter than the suppression's frames does not match
    expect(findSuppression(supps, 'definite', matchFrames('operator new(unsigned long)', [frame('parse', '/prog', 'src/parser.c', 42)]))).toBeUndefined()
    // src: by file name (no directory) and line; C++ new under its mangled name
    expect(findSuppression(supps, 'definite', matchFrames('operator new(unsigned long)', [frame('parse', '/prog', 'src/parser.c', 42), frame('main')]))?.name).toBe('by-source')
    expect(findSuppression(supps, 'definite', matchFrames('operator new(unsigned long)', [frame('parse', '/prog', 'src/parser.c', 43), frame('main')]))).toBeUndefined()
  })

  it('counts what it suppresses and, when asked, gives the rest a ready-to-paste suppression', () => {
    const record = { kind: 'possible' as const, bytes: 272, blocks: 1, test: 't', stack: [frame('allocate_dtv'), frame('_dl_allocate_tls')] }
    const other = { kind: 'definite' as const, bytes: 8, blocks: 2, test: 't', stack: [frame('leak'), frame('main'), frame('__libc_start_main')] }
    const { kept, suppressed } = applySuppressions(
      [
        { record, allocator: null },
        { record: other, allocator: null },
      ],
      supps,
      true,
    )
    expect(suppressed).toEqual({ bytes: 272, blocks: 1 })
    expect(kept.map((r) => r.suppression)).toEqual([formatSuppression('definite', null, other.stack)])
    expect(kept[0]!.suppression).toBe(['{', '   <insert_a_suppression_name_here>', '   Memcheck:Leak', '   match-leak-kinds: definite', '   fun:*alloc', '   fun:leak', '   fun:main', '}'].join('\n'))
    // what it generates, it matches
    expect(findSuppression(parseSuppressions(kept[0]!.suppression!, 'gen'), 'definite', matchFrames(null, other.stack))).toBeDefined()
    expect(formatSuppression('definite', 'operator new[](unsigned long)', [frame('f')])).toContain('fun:_Znam\n   fun:f')
  })

  it('a malformed file is a bad option naming the file and the line', () => {
    expect(() => parseSuppressions('{\n x\n Memcheck:Leak\n bogus\n}\n', 'my.supp')).toThrow(BadOptionError)
    expect(() => parseSuppressions('{\n x\n Memcheck:Leak\n bogus\n}\n', 'my.supp')).toThrow(/my\.supp has `bogus` where a frame .* at line 5/)
    expect(() => parseSuppressions('{\n x\n Memcheck:Leak\n fun:f\n', 'my.supp')).toThrow(/not closed/)
    expect(() => parseSuppressions('fun:f\n', 'my.supp')).toThrow(/outside a suppression/)
    expect(() => parseSuppressions('{\n x\n Memcheck:Leak\n match-leak-kinds: lost\n fun:f\n}', 'my.supp')).toThrow(/unknown leak kind `lost`/)
  })
})

describe('C++ names in a suppression file', () => {
  it('match mangled, as memcheck names them, and demangled, as heapspec’s frames carry them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-supp-'))
    const file = join(dir, 'cxx.supp')
    writeFileSync(file, '{\n   widget\n   Memcheck:Leak\n   fun:_Znwm\n   fun:_ZN2ns6Widget4makeEi\n   fun:main\n}\n')
    const supps = loadSuppressions([file])
    const stack = [frame('ns::Widget::make(int)'), frame('main')]
    expect(findSuppression(supps, 'definite', matchFrames('operator new(unsigned long)', stack))?.name).toBe('widget')
    expect(findSuppression(supps, 'definite', matchFrames('operator new(unsigned long)', [frame('ns::Widget::make(long)'), frame('main')]))).toBeUndefined()
    // heapspec's defaults come first, from the shipped file
    expect(supps[0]!.name).toBe('heapspec-glibc-thread-dtv')
  })
})

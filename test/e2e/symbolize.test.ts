import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SymbolCache } from '../../src/capture/symbol-cache.js'
import { EarlySymbolizer, symbolize } from '../../src/capture/symbolize.js'
import { descendants } from '../../src/capture/process.js'
import { program, ROOT } from '../support/debugee.js'

// The real symbolizers on real objects: the program (debugee/build/definite: make() and main())
// and glibc (strdup), as if loaded at the biases below, each address a few bytes into its function
// as nm gives it (a return address is looked up at pc - 1, inside the call).
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6'
const PROGRAM_BIAS = 0x10_0000_0000
const LIBC_BIAS = 0x20_0000_0000
const objects = [
  { lo: PROGRAM_BIAS, hi: PROGRAM_BIAS + statSync(program('definite')).size, bias: PROGRAM_BIAS, path: '' },
  { lo: LIBC_BIAS, hi: LIBC_BIAS + statSync(LIBC).size, bias: LIBC_BIAS, path: LIBC },
]
let pcs: number[] = []

async function symbolAt(args: string[], name: RegExp): Promise<number> {
  const line = String((await execa('nm', args)).stdout).split('\n').find((l) => name.test(l))
  if (!line) throw new Error(`nm ${args.join(' ')}: no ${name}`)
  return parseInt(line.split(' ')[0]!, 16)
}

beforeAll(async () => {
  const make = await symbolAt([program('definite')], / t make$/)
  const main = await symbolAt([program('definite')], / T main$/)
  const strdup = await symbolAt(['-D', LIBC], / W strdup@@/)
  pcs = [PROGRAM_BIAS + make + 5, LIBC_BIAS + strdup + 5, PROGRAM_BIAS + main + 5]
})

describe('symbolize', () => {
  const path = process.env.PATH
  afterEach(() => {
    process.env.PATH = path
  })

  it('resolves the objects of a report together, each address to its own object and function, libc by its exported name', async () => {
    const { frames, missingTool } = await symbolize(pcs, objects, program('definite'))
    expect(missingTool).toBe(false)
    expect(frames.map((f) => [f.pc, f.fn, f.file?.replace(/.*\//, ''), f.object])).toEqual([
      [pcs[0], 'make', 'definite.c', program('definite')],
      [pcs[2], 'main', 'definite.c', program('definite')],
      [pcs[1], 'strdup', 'strdup.c', LIBC],
    ])
  })

  it('started before the run and loaded ahead (libc by the path /proc gives it), answers as one started at the end', async () => {
    const plain = await symbolize(pcs, objects, program('definite'))
    // /lib is a link to /usr/lib here: the dynamic linker says one, /proc/self/maps the other
    const early = new EarlySymbolizer([program('definite'), '/usr/lib/x86_64-linux-gnu/libc.so.6'])
    early.start()
    const ahead = await symbolize(pcs, objects, program('definite'), early)
    expect(ahead).toEqual(plain)
    expect(ahead.frames.map((f) => f.fn)).toEqual(['make', 'main', 'strdup'])
    expect(descendants(process.pid).length).toBe(0)
  })

  it('runs nothing until started; started and never asked (nothing to resolve), is ended and leaves no process', async () => {
    const early = new EarlySymbolizer([program('definite')])
    expect(descendants(process.pid).length).toBe(0)
    early.start()
    early.start()
    expect(descendants(process.pid).length).toBe(1)
    expect(await symbolize([], objects, program('definite'), early)).toEqual({ frames: [], missingTool: false })
    expect(descendants(process.pid).length).toBe(0)
    const unused = new EarlySymbolizer([])
    await unused.close()
    expect(descendants(process.pid).length).toBe(0)
  })

  it('without llvm-symbolizer, addr2line object by object gives the same functions', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'heapspec-symbolize-'))
    symlinkSync('/usr/bin/addr2line', join(bin, 'addr2line'))
    process.env.PATH = bin
    // one started ahead finds no llvm-symbolizer either: addr2line answers instead
    const { frames, missingTool } = await symbolize(pcs, objects, program('definite'), new EarlySymbolizer([program('definite')]))
    expect(missingTool).toBe(false)
    expect(frames.map((f) => [f.pc, f.fn, f.object])).toEqual([
      [pcs[0], 'make', program('definite')],
      [pcs[2], 'main', program('definite')],
      [pcs[1], 'strdup', LIBC],
    ])
  })

  it('with no symbolizer at all, says so and keeps each frame\'s object', async () => {
    process.env.PATH = mkdtempSync(join(tmpdir(), 'heapspec-symbolize-'))
    const { frames, missingTool } = await symbolize(pcs, objects, program('definite'))
    expect(missingTool).toBe(true)
    expect(frames.map((f) => [f.fn, f.object])).toEqual([
      [null, program('definite')],
      [null, program('definite')],
      [null, LIBC],
    ])
  })
})

describe('SymbolCache: answers kept from one run to the next', () => {
  const saved = { PATH: process.env.PATH, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME }
  afterEach(() => {
    process.env.PATH = saved.PATH
    if (saved.XDG_CACHE_HOME === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = saved.XDG_CACHE_HOME
  })
  const noTools = (): void => {
    process.env.PATH = mkdtempSync(join(tmpdir(), 'heapspec-symbolize-'))
  }
  const cacheHome = (): string => (process.env.XDG_CACHE_HOME = mkdtempSync(join(tmpdir(), 'heapspec-symbol-cache-')))

  it('answers a later run without any symbolizer, as the symbolizer did', async () => {
    cacheHome()
    const first = await symbolize(pcs, objects, program('definite'), undefined, await SymbolCache.open())
    expect(first.frames.map((f) => f.fn)).toEqual(['make', 'main', 'strdup'])
    const cache = (await SymbolCache.open())!
    expect(cache.knows(program('definite'))).toBe(true)
    // the same libc named by the path /proc gives it: one object, one file of answers
    expect(cache.knows('/usr/lib/x86_64-linux-gnu/libc.so.6')).toBe(true)
    noTools()
    const later = await symbolize(pcs, objects, program('definite'), undefined, cache)
    expect(later.missingTool).toBe(false)
    const byPc = (r: typeof first): unknown => [...r.frames].sort((a, b) => a.pc - b.pc)
    expect(byPc(later)).toEqual(byPc(first))
  })

  it('forgets an object rebuilt (another modification time), and trusts no file another user could write', async () => {
    const home = cacheHome()
    const dir = mkdtempSync(join(tmpdir(), 'heapspec-symbolize-'))
    const copy = join(dir, 'definite')
    copyFileSync(program('definite'), copy)
    const own = [objects[0]!]
    await symbolize([pcs[0]!], own, copy, undefined, await SymbolCache.open())
    expect((await SymbolCache.open())!.knows(copy)).toBe(true)
    const files = readdirSync(join(home, 'heapspec')).filter((f) => f.startsWith('heapspec-symbols-'))
    expect(files).toHaveLength(1)
    const file = join(home, 'heapspec', files[0]!)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    // planted answers in a file the group may write: never read
    const planted = JSON.parse(readFileSync(file, 'utf8')) as { symbols: Record<string, unknown[]> }
    for (const address of Object.keys(planted.symbols)) planted.symbols[address] = ['evil', '/evil.c', 1]
    writeFileSync(file, JSON.stringify(planted))
    chmodSync(file, 0o620)
    noTools()
    const tampered = await symbolize([pcs[0]!], own, copy, undefined, await SymbolCache.open())
    expect(tampered.missingTool).toBe(true)
    expect(tampered.frames.map((f) => f.fn)).toEqual([null])
    process.env.PATH = saved.PATH
    chmodSync(file, 0o600)
    expect((await symbolize([pcs[0]!], own, copy, undefined, await SymbolCache.open())).frames.map((f) => f.fn)).toEqual(['evil'])
    // the program built again: its old answers are not its answers
    utimesSync(copy, new Date(), new Date(Date.now() + 5000))
    const rebuilt = (await SymbolCache.open())!
    expect(rebuilt.knows(copy)).toBe(false)
    expect((await symbolize([pcs[0]!], own, copy, undefined, rebuilt)).frames.map((f) => f.fn)).toEqual(['make'])
  })
})

// The preload backend starts llvm-symbolizer at the program's first stack, not before the program:
// spawned first, it delayed every program's start by the spawn, and a program that makes no stack
// never needed it. A wrapper on PATH counts its starts.
describe('the preload backend\'s symbolizer', () => {
  it('is not started for a program that makes no stack, and names the frames of one that does', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'heapspec-symbolizer-wrap-'))
    const log = join(bin, 'started')
    const real = String((await execa('sh', ['-c', 'command -v llvm-symbolizer'])).stdout).trim()
    writeFileSync(join(bin, 'llvm-symbolizer'), `#!/bin/sh\necho started >> '${log}'\nexec '${real}' "$@"\n`)
    chmodSync(join(bin, 'llvm-symbolizer'), 0o755)
    // a cache of its own: no answer is kept yet for either program
    const env = { PATH: `${bin}:${process.env.PATH}`, XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'heapspec-symbol-cache-')) }
    const cli = (command: string[]) => execa('node', [join(ROOT, 'dist', 'src', 'cli.js'), 'run', '--backend', 'preload', '--', ...command], { env, reject: false })
    const none = await cli(['/bin/true'])
    expect(none.exitCode).toBe(0)
    expect(String(none.stderr)).toContain('total heap usage: 0 allocs, 0 frees, 0 bytes allocated')
    expect(existsSync(log)).toBe(false)
    const some = await cli([program('definite')])
    expect(some.exitCode).toBe(1)
    expect(String(some.stderr)).toContain('at make (debugee/definite.c:30)')
    expect(readFileSync(log, 'utf8')).toBe('started\n')
  }, 60_000)
})

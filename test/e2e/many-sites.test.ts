import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import type { RunJson } from '../../src/model/types.js'
import { memcheck, type MemcheckVerdict } from '../support/memcheck.js'
import { program, ROOT } from '../support/debugee.js'

// debugee/scale/many-sites: 100,000 distinct call sites, each losing a 16-byte block, under the
// preload backend through the CLI (the stack lines read from their bytes, the symbol cache, the
// loss records and the report at that scale), held to memcheck's figures and records. A fresh copy
// of the program is an object the symbol cache has never seen: its first run asks llvm-symbolizer
// every address, its second none, and both must print and write the same bytes.
const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const SITES = 100_000

interface CliRun {
  exitCode: number | undefined
  stdout: string
  report: string
  json: string
}

async function heapspec(command: string): Promise<CliRun> {
  const json = join(mkdtempSync(join(tmpdir(), 'heapspec-sites-')), 'run.json')
  const result = await execa('node', [CLI, 'run', '--backend', 'preload', '--json', json, '--', command], { cwd: ROOT, reject: false, env: { CI: 'true' } })
  return { exitCode: result.exitCode, stdout: String(result.stdout), report: String(result.stderr), json: readFileSync(json, 'utf8') }
}

/**
 * A record's first frame, as both tools name it: source file's name and line. Not its function:
 * gcc -O2 folds the 100 identical functions into one (-fipa-icf), which memcheck names by one of
 * its aliases (sites_10) and llvm-symbolizer by another (sites_11).
 */
const where = (file: string | null | undefined, line: number | null | undefined): string => `${file?.split('/').at(-1)}:${line}`

describe('100,000 distinct leaking sites (debugee/scale/many-sites) under preload', () => {
  let copy: string
  let cold: CliRun
  let warm: CliRun
  let reference: MemcheckVerdict
  beforeAll(async () => {
    copy = join(mkdtempSync(join(tmpdir(), 'heapspec-sites-')), 'many-sites')
    copyFileSync(program('scale/many-sites'), copy)
    cold = await heapspec(copy)
    warm = await heapspec(copy)
    reference = await memcheck([copy])
  }, 240_000)

  it('gives memcheck\'s figures and its 100,000 records, site by site', () => {
    const run = JSON.parse(cold.json) as RunJson
    // 33 MB on one line: indented it was 57 MB, and its stringify and write a third of the run
    expect(cold.json.indexOf('\n')).toBe(cold.json.length - 1)
    expect(cold.exitCode).toBe(1)
    expect(cold.stdout).toBe(reference.stdout)
    expect(reference.exitCode).toBe(0)
    expect(run.program).toEqual({ command: [copy], exitCode: 0, signal: null })
    expect(run.totals).toEqual(reference.totals)
    expect(run.leakSummary).toEqual(reference.leakSummary)
    expect(run.leakSummary.definite).toEqual({ bytes: 16 * SITES, blocks: SITES })
    expect(run.leaks).toHaveLength(SITES)
    const ours = run.leaks.map((r) => `${r.kind} ${r.bytes}/${r.blocks} ${where(r.stack[0]?.file, r.stack[0]?.line)} < ${r.stack[1]?.fn}`).sort()
    const theirs = reference.records
      .map((r) => {
        const [, file, line] = /^\S+ \((.*):(\d+)\)$/.exec(r.frames[0]!) ?? []
        return `${r.kind} ${r.bytes}/${r.blocks} ${where(file, Number(line))} < ${r.frames[1]?.split(' ')[0]}`
      })
      .sort()
    expect(ours).toEqual(theirs)
    // every site its own record: the folded function's 1,000 calls of malloc, each reached from
    // 100 calls in main
    expect(new Set(run.leaks.map((r) => r.stack.map((f) => f.pc).join(' '))).size).toBe(SITES)
    expect(new Set(run.leaks.map((r) => r.stack[0]!.pc)).size).toBe(1000)
    expect(new Set(run.leaks.map((r) => r.stack[1]!.pc)).size).toBe(100)
  })

  it('prints every record in memcheck\'s words, and its summaries', () => {
    expect(cold.report.split('\n').filter((l) => l === '16 bytes in 1 block is definitely lost')).toHaveLength(SITES)
    expect(cold.report).toMatch(/^heapspec: \S+many-sites exited with code 0 \(backend: preload\)\n\n16 bytes in 1 block is definitely lost\n {4}at sites_\d+ \(debugee\/scale\/many-sites\.c:\d+\)\n {4}by main \(debugee\/scale\/many-sites\.c:\d+\)\n/)
    expect(cold.report).toContain('\n  total heap usage: 100,000 allocs, 0 frees, 1,600,000 bytes allocated\n')
    expect(cold.report).toContain('\n   definitely lost: 1,600,000 bytes in 100,000 blocks\n')
  })

  it('prints and writes the same bytes whether the symbolizer answered (first run) or the symbol cache did (second)', () => {
    expect(warm.exitCode).toBe(cold.exitCode)
    expect(warm.stdout).toBe(cold.stdout)
    expect(warm.report === cold.report).toBe(true)
    // the addresses alone differ (the program is loaded elsewhere each run)
    const unplaced = (json: string): string => json.replace(/"pc":"0x[0-9a-f]+"/g, '"pc"')
    expect(unplaced(warm.json) === unplaced(cold.json)).toBe(true)
    expect(unplaced(warm.json)).not.toBe(warm.json)
  })
})

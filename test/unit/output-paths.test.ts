import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BadOptionError } from '../../src/errors.js'
import { checkOutputFile, prepareOutputDir } from '../../src/output-paths.js'

const fresh = (): string => mkdtempSync(join(tmpdir(), 'heapspec-paths-'))

describe('checkOutputFile (--json, --log-file)', () => {
  it('accepts a new file in an existing directory, or an existing file, and answers with the absolute path', () => {
    const dir = fresh()
    expect(checkOutputFile('--json', 'run.json', dir)).toBe(join(dir, 'run.json'))
    writeFileSync(join(dir, 'old.json'), '')
    expect(checkOutputFile('--json', join(dir, 'old.json'))).toBe(join(dir, 'old.json'))
  })

  it.each([
    ['a missing directory', (dir: string) => join(dir, 'no', 'run.json'), /^heapspec: --json \S+: the directory \S+ does not exist\. Create it first \(mkdir -p \S+\)\.$/],
    ['a directory', (dir: string) => dir, /^heapspec: --json \S+ is a directory\. Name a file/],
    ['a file as the directory', (dir: string) => (writeFileSync(join(dir, 'f'), ''), join(dir, 'f', 'run.json')), /: \S+\/f is not a directory\. /],
    ['/proc', () => '/proc/self/status', /^heapspec: --json \/proc\/self\/status is inside \/proc, a kernel file system\. /],
    ['/sys', () => '/sys/kernel/x', /is inside \/sys, a kernel file system\. /],
  ])('refuses %s in one line', (_name, path, message) => {
    const target = path(fresh())
    expect(() => checkOutputFile('--json', target)).toThrow(BadOptionError)
    expect(() => checkOutputFile('--json', target)).toThrow(message)
  })
})

describe('prepareOutputDir (--out)', () => {
  it('makes the directory with its parents, and takes an existing one', () => {
    const dir = fresh()
    expect(prepareOutputDir('--out', join(dir, 'a', 'b'))).toBe(join(dir, 'a', 'b'))
    expect(statSync(join(dir, 'a', 'b')).isDirectory()).toBe(true)
    mkdirSync(join(dir, 'c'))
    expect(prepareOutputDir('--out', 'c', dir)).toBe(join(dir, 'c'))
  })

  it('refuses a file, a path under a file and /proc, in one line', () => {
    const dir = fresh()
    writeFileSync(join(dir, 'f'), '')
    expect(() => prepareOutputDir('--out', join(dir, 'f'))).toThrow(/^heapspec: --out \S+ is a file, not a directory\. /)
    expect(() => prepareOutputDir('--out', join(dir, 'f', 'sub'))).toThrow(/^heapspec: --out \S+: cannot create the directory \(ENOTDIR\)\. /)
    expect(() => prepareOutputDir('--out', '/proc/x')).toThrow(/is inside \/proc/)
  })
})

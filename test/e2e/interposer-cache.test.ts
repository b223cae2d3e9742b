import { createHash } from 'node:crypto'
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import { runNative } from '../../src/index.js'
import { program, ROOT } from '../support/debugee.js'

// A library planted where the preload backend keeps its interposer must never be loaded into the
// user's program. The planted library writes a marker file from its constructor: the marker must
// never appear. Real programs under the real preload backend, through the real CLI. We run as root
// here, so "someone else" is uid 1234 (chown), or anyone at all (mode 0777).

const CLI = join(ROOT, 'dist', 'src', 'cli.js')
const OTHER_UID = 1234

const top = mkdtempSync(join(tmpdir(), 'heapspec-planted-'))
const marker = join(top, 'planted-library-ran')
const planted = join(top, 'planted.so')

/** The names a genuine build uses (learned from one), and the genuine library's bytes. */
let names: { library: string; manifest: string; oldStyle: string }
let genuine: Buffer

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/** A cache directory as an attacker would fill it: the planted library under every name heapspec ever used, and a manifest vouching for it. */
function plant(dir: string): void {
  copyFileSync(planted, join(dir, names.library))
  copyFileSync(planted, join(dir, names.oldStyle))
  writeFileSync(join(dir, names.manifest), JSON.stringify({ heapspecInterposer: 1, library: names.library, sha256: sha256(readFileSync(planted)) }))
}

/** A fresh home, cache and temp dir for one run of the CLI. */
function sandbox(name: string): { xdg: string; tmp: string; home: string } {
  const base = join(top, name)
  const paths = { xdg: join(base, 'xdg'), tmp: join(base, 'tmp'), home: join(base, 'home') }
  for (const p of Object.values(paths)) mkdirSync(p, { recursive: true, mode: 0o700 })
  return paths
}

function heapspecRun(env: Record<string, string>) {
  return execa('node', [CLI, 'run', '--backend', 'preload', 'debugee/build/definite'], { cwd: ROOT, reject: false, extendEnv: false, env: { PATH: process.env.PATH!, CI: 'true', ...env } })
}

/** What heapspec said on stderr before the leak report (which goes there too). */
function heapspecSaid(result: Awaited<ReturnType<typeof heapspecRun>>): string {
  const report = result.stderr.indexOf('heapspec: debugee/build/definite exited')
  return (report < 0 ? result.stderr : result.stderr.slice(0, report)).trim()
}

/** The run worked, with the genuine interposer: definite's leaks were seen. */
function expectGenuineRun(result: Awaited<ReturnType<typeof heapspecRun>>): void {
  expect(result.exitCode).toBe(1)
  expect(result.stderr).toContain('heapspec: debugee/build/definite exited with code 0 (backend: preload)')
  expect(result.stderr).toContain('definitely lost: 600 bytes in 3 blocks')
  expect(existsSync(marker)).toBe(false)
}

beforeAll(async () => {
  await execa('cc', ['-shared', '-fPIC', `-DMARKER="${marker}"`, '-o', planted, '-x', 'c', '-'], {
    input: '#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void planted(void) { int fd = open(MARKER, O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd); }\n',
  })
  // the planted library works: preloaded by hand, it writes the marker (then the marker is removed)
  await execa(program('definite'), [], { env: { LD_PRELOAD: planted }, reject: false })
  expect(existsSync(marker)).toBe(true)
  rmSync(marker)
  const reference = sandbox('reference')
  expectGenuineRun(await heapspecRun({ XDG_CACHE_HOME: reference.xdg, TMPDIR: reference.tmp, HOME: reference.home }))
  // the launcher runs start under is kept the same way, beside it
  const files = readdirSync(join(reference.xdg, 'heapspec'))
    .filter((f) => f.startsWith('heapspec-preload-'))
    .sort()
  expect(readdirSync(join(reference.xdg, 'heapspec')).filter((f) => f.startsWith('heapspec-launch-'))).toHaveLength(2)
  expect(files).toHaveLength(2)
  expect(files[0]).toMatch(/^heapspec-preload-[0-9a-f]{16}-[0-9a-f]{16}\.so$/)
  expect(files[1]).toMatch(/^heapspec-preload-[0-9a-f]{16}\.json$/)
  names = { library: files[0]!, manifest: files[1]!, oldStyle: files[1]!.replace(/\.json$/, '.so') }
  genuine = readFileSync(join(reference.xdg, 'heapspec', names.library))
})

describe('a planted interposer is never loaded', () => {
  it('in a cache directory owned by someone else: refused in one line, and heapspec builds in the next one', async () => {
    const { xdg, tmp, home } = sandbox('foreign-owner')
    mkdirSync(join(xdg, 'heapspec'), { mode: 0o755 })
    plant(join(xdg, 'heapspec'))
    chownSync(join(xdg, 'heapspec'), OTHER_UID, OTHER_UID)
    const result = await heapspecRun({ XDG_CACHE_HOME: xdg, TMPDIR: tmp, HOME: home })
    expectGenuineRun(result)
    expect(heapspecSaid(result)).toBe(
      `heapspec: not using ${xdg}/heapspec for the preload backend's interposer: it belongs to someone else (owner uid ${OTHER_UID}, mode 0755); it must be a directory of yours (uid 0) with mode 0700. Remove it, or set XDG_CACHE_HOME to a directory of your own. heapspec used ${tmp}/heapspec-0 instead.`,
    )
    expect(readFileSync(join(tmp, 'heapspec-0', names.library))).toEqual(genuine)
  })

  it('in a cache directory anyone can write', async () => {
    const { xdg, tmp, home } = sandbox('mode-0777')
    mkdirSync(join(xdg, 'heapspec'))
    chmodSync(join(xdg, 'heapspec'), 0o777)
    plant(join(xdg, 'heapspec'))
    const result = await heapspecRun({ XDG_CACHE_HOME: xdg, TMPDIR: tmp, HOME: home })
    expectGenuineRun(result)
    expect(heapspecSaid(result)).toBe(
      `heapspec: not using ${xdg}/heapspec for the preload backend's interposer: others can use it (owner uid 0, mode 0777); it must be a directory of yours (uid 0) with mode 0700. Remove it, or set XDG_CACHE_HOME to a directory of your own. heapspec used ${tmp}/heapspec-0 instead.`,
    )
  })

  it('in a cache directory that is a symbolic link, even to a private directory of ours', async () => {
    const { xdg, tmp, home } = sandbox('symlink')
    const elsewhere = join(top, 'symlink', 'elsewhere')
    mkdirSync(elsewhere, { mode: 0o700 })
    plant(elsewhere)
    symlinkSync(elsewhere, join(xdg, 'heapspec'))
    const result = await heapspecRun({ XDG_CACHE_HOME: xdg, TMPDIR: tmp, HOME: home })
    expectGenuineRun(result)
    expect(heapspecSaid(result)).toBe(
      `heapspec: not using ${xdg}/heapspec for the preload backend's interposer: it is a symbolic link (to ${elsewhere}), which heapspec does not follow; it must be a directory of yours (uid 0) with mode 0700. Remove it, or set XDG_CACHE_HOME to a directory of your own. heapspec used ${tmp}/heapspec-0 instead.`,
    )
  })

  it('in a private cache directory inside one anyone can write (it could be swapped)', async () => {
    const { xdg, tmp, home } = sandbox('open-parent')
    chmodSync(xdg, 0o777)
    mkdirSync(join(xdg, 'heapspec'), { mode: 0o700 })
    plant(join(xdg, 'heapspec'))
    const result = await heapspecRun({ XDG_CACHE_HOME: xdg, TMPDIR: tmp, HOME: home })
    expectGenuineRun(result)
    expect(heapspecSaid(result)).toBe(
      `heapspec: not using ${xdg}/heapspec for the preload backend's interposer: ${xdg} above it can be written by others (owner uid 0, mode 0777); it must be a directory of yours (uid 0) with mode 0700. Remove it, or set XDG_CACHE_HOME to a directory of your own. heapspec used ${tmp}/heapspec-0 instead.`,
    )
  })

  it('in /tmp/heapspec-<uid> made by someone else when the home cannot be written: heapspec builds privately, and cleans up', async () => {
    const { tmp } = sandbox('temp-fallback')
    mkdirSync(join(tmp, 'heapspec-0'), { mode: 0o777 })
    chmodSync(join(tmp, 'heapspec-0'), 0o777)
    plant(join(tmp, 'heapspec-0'))
    chownSync(join(tmp, 'heapspec-0'), OTHER_UID, OTHER_UID)
    // HOME is a file: ~/.cache cannot be made, as with a read-only home
    const result = await heapspecRun({ TMPDIR: tmp, HOME: '/dev/null' })
    expectGenuineRun(result)
    expect(heapspecSaid(result)).toBe(
      `heapspec: not using ${tmp}/heapspec-0 for the preload backend's interposer: it belongs to someone else (owner uid ${OTHER_UID}, mode 0777); it must be a directory of yours (uid 0) with mode 0700. Remove it, or set XDG_CACHE_HOME to a directory of your own. heapspec built its interposer in a private directory instead.`,
    )
    expect(readdirSync(tmp)).toEqual(['heapspec-0']) // the private build directory went with the process
  })

  it('in our own private cache: a library replaced, or not ours, or writable by others, is built again without a word', async () => {
    const { xdg, tmp, home } = sandbox('own-cache')
    const env = { XDG_CACHE_HOME: xdg, TMPDIR: tmp, HOME: home }
    const cache = join(xdg, 'heapspec')
    expectGenuineRun(await heapspecRun(env))
    const tamperings: [string, () => void][] = [
      // the recorded hash no longer matches
      ['replaced', () => copyFileSync(planted, join(cache, names.library))],
      // a manifest vouching for the planted library, which belongs to someone else
      ['foreign', () => (plant(cache), chownSync(join(cache, names.library), OTHER_UID, OTHER_UID))],
      // ... or that others may write
      ['group-writable', () => (plant(cache), chmodSync(join(cache, names.library), 0o775))],
    ]
    for (const [name, tamper] of tamperings) {
      tamper()
      const result = await heapspecRun(env)
      expectGenuineRun(result)
      expect(heapspecSaid(result), name).toBe('')
      expect(readFileSync(join(cache, names.library)), name).toEqual(genuine)
    }
    expect(readdirSync(cache).filter((f) => !f.startsWith('heapspec-launch-') && !f.startsWith('heapspec-cli-') && !f.startsWith('heapspec-symbols-') && !f.startsWith('heapspec-gtest-') && !f.startsWith('heapspec-markers-')).sort()).toEqual([names.library, names.manifest, names.oldStyle]) // the old-style plant is ignored, never loaded
  })

  it('a relative XDG_CACHE_HOME is ignored, as the XDG spec says (the program would read it from its own directory)', async () => {
    const { tmp, home } = sandbox('relative-xdg')
    const result = await heapspecRun({ XDG_CACHE_HOME: 'planted-cache', TMPDIR: tmp, HOME: home })
    expectGenuineRun(result)
    expect(heapspecSaid(result)).toBe('')
    expect(readdirSync(join(home, '.cache', 'heapspec')).filter((f) => !f.startsWith('heapspec-launch-') && !f.startsWith('heapspec-cli-') && !f.startsWith('heapspec-symbols-') && !f.startsWith('heapspec-gtest-') && !f.startsWith('heapspec-markers-')).sort()).toEqual([names.library, names.manifest])
    expect(existsSync(join(ROOT, 'planted-cache'))).toBe(false)
  })

  it('checked before every use: a library replaced between two runs of one process is built again', async () => {
    const { xdg } = sandbox('in-process')
    const previous = process.env.XDG_CACHE_HOME
    process.env.XDG_CACHE_HOME = xdg
    try {
      const first = await runNative([program('definite')], { backend: 'preload' })
      expect(first.json.leakSummary.definite).toEqual({ bytes: 600, blocks: 3 })
      copyFileSync(planted, join(xdg, 'heapspec', names.library))
      const second = await runNative([program('definite')], { backend: 'preload' })
      expect(second.json.leakSummary.definite).toEqual({ bytes: 600, blocks: 3 })
      expect(existsSync(marker)).toBe(false)
      expect(readFileSync(join(xdg, 'heapspec', names.library))).toEqual(genuine)
    } finally {
      if (previous === undefined) delete process.env.XDG_CACHE_HOME
      else process.env.XDG_CACHE_HOME = previous
    }
  })
})

describe("the answers about a program kept in the cache directory: believed only from a private file of the user's", () => {
  const run = (xdg: string, program: string) =>
    execa('node', [CLI, 'run', '--json', join(xdg, 'run.json'), '--backend', 'preload', program], { cwd: ROOT, reject: false, extendEnv: false, env: { PATH: process.env.PATH!, CI: 'true', XDG_CACHE_HOME: xdg } })
  const testNames = (xdg: string): string[] => (JSON.parse(readFileSync(join(xdg, 'run.json'), 'utf8')) as { tests: { name: string }[] }).tests.map((t) => t.name)
  const cases: [string, string, string, string[]][] = [
    // recognised: each GoogleTest test a test case
    ['the GoogleTest check', 'debugee/build/gtest-plain', 'heapspec-gtest-', ['Heap.Clean', 'Heap.LeaksNew', 'Heap.VectorFreed', 'Buffer.SetUpFreedInTearDown', 'LeakySetUp.LeaksInSetUp']],
    // told "no", the interposer does not read the program's symbol tables for markers
    ['whether it names a marker', 'debugee/build/tests', 'heapspec-markers-', ['test_clean', 'test_leaks_two', 'test_indirect', 'test_thread_leak', 'test_keeps', 'test_frees_kept']],
  ]
  it.each(cases)('%s: a kept "no" is believed (no test cases), one others can write is not', async (_what, program, prefix, names) => {
    const box = sandbox(prefix.replace(/-$/, ''))
    await run(box.xdg, program)
    expect(testNames(box.xdg)).toEqual(names)
    const kept = readdirSync(join(box.xdg, 'heapspec')).filter((f) => f.startsWith(prefix))
    expect(kept).toHaveLength(1)
    const file = join(box.xdg, 'heapspec', kept[0]!)
    expect(readFileSync(file, 'utf8')).toBe('yes')
    writeFileSync(file, 'no')
    chmodSync(file, 0o600)
    await run(box.xdg, program)
    expect(testNames(box.xdg)).toEqual([])
    // a file others can write is never believed: the program is read again
    chmodSync(file, 0o666)
    await run(box.xdg, program)
    expect(testNames(box.xdg)).toEqual(names)
  }, 120_000)
})

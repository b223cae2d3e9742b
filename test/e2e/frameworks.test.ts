import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { program, ROOT } from '../support/debugee.js'

// The packed package, installed into copies of examples/vitest and examples/jest as a user would
// install it, and each framework run for real: which tests pass and fail, what the failures say,
// and the allocation snapshot written, honoured, failed, updated with -u, and refused in CI mode.
// Then into a new project with nothing but the framework and heapspec, as a user starts one.
// npm test builds dist/ (ESM and the CommonJS bundle) before any test runs; CI packs the package
// with its prepack build first and names the tarball in HEAPSPEC_TARBALL.

interface Framework {
  name: 'vitest' | 'jest'
  /** The example's snapshot file, once the list test has run. */
  snapshot: string
  /** The added test file with leaks, in the framework's own style. */
  leakyFile: string
  leakyTest: string
  /** The framework's command, as the example's `npm test` runs it. */
  bin: string[]
  /** Its arguments for a run writing JSON results to `out`. */
  reportArgs(out: string): string[]
  /** The example's own test file. */
  listTest: string
}

const FRAMEWORKS: Framework[] = [
  {
    name: 'vitest',
    snapshot: 'test/__snapshots__/list.test.ts.snap',
    leakyFile: 'test/leaky.test.ts',
    leakyTest: `import { fileURLToPath } from 'node:url'
import { beforeAll, expect, test } from 'vitest'
import { runNative, type HeapRun } from 'heapspec'
import { describeNative } from 'heapspec/vitest'

const program = fileURLToPath(new URL('../build/list', import.meta.url))
let run: HeapRun
beforeAll(async () => {
  run = await runNative([program, '--leak'])
})

test('the leaky build has no leaks', () => expect(run).toHaveNoLeaks())
test('test_drop_list leaks at most 16 bytes', () => expect(run.test('test_drop_list')).toLeakAtMost({ bytes: 16 }))
test('test_push_three allocates at most 5 times', () => expect(run.test('test_push_three')).toAllocateAtMost({ allocations: 5 }))
test('test_push_three peaks at most 50 bytes', () => expect(run.test('test_push_three')).toPeakAtMost({ bytes: 50 }))
test('test_push_three leaks nothing', () => expect(run.test('test_push_three')).toHaveNoLeaks())
describeNative([program, '--leak'], { name: 'list --leak' })
`,
    bin: ['node_modules/.bin/vitest', 'run'],
    reportArgs: (out) => ['--reporter=default', '--reporter=json', `--outputFile.json=${out}`],
    listTest: 'test/list.test.ts',
  },
  {
    name: 'jest',
    snapshot: 'test/__snapshots__/list.test.js.snap',
    leakyFile: 'test/leaky.test.js',
    leakyTest: `const path = require('node:path')
const { runNative, describeNative } = require('heapspec')

const program = path.join(__dirname, '..', 'build', 'list')
let run
beforeAll(async () => {
  run = await runNative([program, '--leak'])
})

test('the leaky build has no leaks', () => expect(run).toHaveNoLeaks())
test('test_drop_list leaks at most 16 bytes', () => expect(run.test('test_drop_list')).toLeakAtMost({ bytes: 16 }))
test('test_push_three allocates at most 5 times', () => expect(run.test('test_push_three')).toAllocateAtMost({ allocations: 5 }))
test('test_push_three peaks at most 50 bytes', () => expect(run.test('test_push_three')).toPeakAtMost({ bytes: 50 }))
test('test_push_three leaks nothing', () => expect(run.test('test_push_three')).toHaveNoLeaks())
describeNative([program, '--leak'], { name: 'list --leak' })
`,
    bin: ['node_modules/.bin/jest'],
    reportArgs: (out) => ['--json', `--outputFile=${out}`],
    listTest: 'test/list.test.js',
  },
]

/** What both frameworks' JSON reports hold (Vitest's json reporter follows Jest's shape). */
interface JsonReport {
  success: boolean
  numFailedTests: number
  testResults: { name: string; assertionResults: { ancestorTitles: string[]; title: string; status: string; failureMessages: string[] }[] }[]
  snapshot: { added: number; matched: number; unmatched: number; updated: number }
}

/** The environment of a run: no CI markers (Vitest and Jest read them to refuse new snapshots) unless asked. */
function runEnv(ci: boolean): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }
  for (const name of ['CI', 'CONTINUOUS_INTEGRATION', 'GITHUB_ACTIONS', 'BUILD_NUMBER', 'RUN_ID', 'UPDATE_SNAPSHOT']) delete env[name]
  if (ci) env.CI = 'true'
  return env
}

let work: string

/** A project's directory in the scratch area. */
const project = (f: Framework): string => join(work, f.name)

/**
 * Runs the framework in its project, directly or through the example's `npm test` (which builds the
 * native program first); returns the JSON report, each test's outcome and its failure text.
 */
async function runFramework(f: Framework, args: string[], options: { ci?: boolean; npmTest?: boolean; cwd?: string } = {}) {
  const cwd = options.cwd ?? project(f)
  const out = join(cwd, '..', `${f.name}-${cwd.split('/').pop()}-report.json`)
  rmSync(out, { force: true })
  const [bin, ...binArgs] = options.npmTest ? ['npm', 'test', '--'] : f.bin
  const result = await execa(bin!, [...binArgs, ...args, ...f.reportArgs(out)], { cwd, env: runEnv(options.ci ?? false), extendEnv: false, reject: false, all: true })
  if (!existsSync(out)) throw new Error(`${f.name} wrote no report (exit ${result.exitCode}):\n${result.all}`)
  const report = JSON.parse(readFileSync(out, 'utf8')) as JsonReport
  const outcomes: Record<string, string> = {}
  const failures: Record<string, string> = {}
  const stacks: Record<string, string> = {}
  for (const file of report.testResults) {
    for (const t of file.assertionResults) {
      const name = [...t.ancestorTitles, t.title].join(' > ')
      outcomes[name] = t.status
      if (t.failureMessages.length > 0) {
        failures[name] = failureText(t.failureMessages.join('\n'))
        stacks[name] = stripVTControlCharacters(t.failureMessages.join('\n'))
      }
    }
  }
  return { report, outcomes, failures, stacks, output: result.all ?? '', exitCode: result.exitCode }
}

/** A failure message without colour, error-class prefix or stack trace. */
function failureText(message: string): string {
  const lines = stripVTControlCharacters(message).split('\n')
  const stack = lines.findIndex((l) => /^\s+at /.test(l) || /^\s+❯ /.test(l))
  return (stack >= 0 ? lines.slice(0, stack) : lines)
    .join('\n')
    .replace(/^(Error|BadOptionError|HeapspecError): /, '')
    .trimEnd()
}

/** A new project's files: the framework and the packed heapspec, a config, and one clean and one leaking test. */
function newProject(f: Framework, tarball: string): Record<string, string> {
  const tests = JSON.stringify(program('tests'))
  if (f.name === 'vitest') {
    return {
      'package.json': JSON.stringify({ name: 'new-vitest-project', private: true, type: 'module', devDependencies: { heapspec: `file:${tarball}`, vitest: '^4.1.0' } }, null, 2),
      'vitest.config.ts': `import { defineConfig } from 'vitest/config'\nexport default defineConfig({ test: { setupFiles: ['heapspec/vitest'], testTimeout: 60_000, hookTimeout: 60_000 } })\n`,
      'test/heap.test.ts': `import { beforeAll, expect, test } from 'vitest'
import { runNative, type HeapRun } from 'heapspec'

let run: HeapRun
beforeAll(async () => {
  run = await runNative([${tests}])
})
test('a clean test case', () => expect(run.test('test_clean')).toHaveNoLeaks())
test('a leaking test case', () => expect(run.test('test_leaks_two')).toHaveNoLeaks())
`,
    }
  }
  return {
    'package.json': JSON.stringify({ name: 'new-jest-project', private: true, devDependencies: { heapspec: `file:${tarball}`, jest: '^30.0.0' } }, null, 2),
    'jest.config.js': `module.exports = { setupFilesAfterEnv: ['heapspec/jest'], testTimeout: 60_000 }\n`,
    'test/heap.test.js': `const { runNative } = require('heapspec')

let run
beforeAll(async () => {
  run = await runNative([${tests}])
})
test('a clean test case', () => expect(run.test('test_clean')).toHaveNoLeaks())
test('a leaking test case', () => expect(run.test('test_leaks_two')).toHaveNoLeaks())
`,
  }
}

/** A new project's directory in the scratch area. */
const fresh = (f: Framework): string => join(work, 'new', f.name)

let tarball: string

beforeAll(async () => {
  for (const built of ['dist/src/index.js', 'dist/cjs/src/index.cjs', 'dist/cjs/matchers/jest.cjs', 'dist/matchers/vitest.js']) {
    if (!existsSync(join(ROOT, built))) throw new Error(`${built} is missing: run npm run build first (npm test does).`)
  }
  work = mkdtempSync(join(tmpdir(), 'heapspec-frameworks-'))
  if (process.env.HEAPSPEC_TARBALL) {
    tarball = resolve(process.env.HEAPSPEC_TARBALL)
  } else {
    // dist/ is built already; a prepack build here would race the other test files reading it.
    const packed = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT })
    tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename)
  }
  const install = (cwd: string) => execa('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd })
  await Promise.all([
    ...FRAMEWORKS.map(async (f) => {
      cpSync(join(ROOT, 'examples', f.name), project(f), { recursive: true, filter: (src) => !/\/(node_modules|build|__snapshots__|package-lock\.json)$/.test(src) })
      const manifest = JSON.parse(readFileSync(join(project(f), 'package.json'), 'utf8')) as Record<string, Record<string, string>>
      manifest.devDependencies!.heapspec = `file:${tarball}`
      writeFileSync(join(project(f), 'package.json'), JSON.stringify(manifest, null, 2))
      writeFileSync(join(project(f), f.leakyFile), f.leakyTest)
      await install(project(f))
    }),
    ...FRAMEWORKS.map(async (f) => {
      for (const [file, text] of Object.entries(newProject(f, tarball))) {
        mkdirSync(dirname(join(fresh(f), file)), { recursive: true })
        writeFileSync(join(fresh(f), file), text)
      }
      await install(fresh(f))
    }),
  ])
}, 300_000)

afterAll(() => {
  if (work && !process.env.HEAPSPEC_KEEP) rmSync(work, { recursive: true, force: true })
})

// Both frameworks print the same failure texts: the matchers' messages are the framework's own.
const NO_LEAKS_FAILURE = `expect(run).toHaveNoLeaks()

Expected no leaks, found 4 leaks (45 B) in build/list --leak:
  - definite: 16 B in 1 block in test "test_drop_list", allocated at push (native/list.c:21) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)
  - indirect: 16 B in 1 block in test "test_drop_list", allocated at push (native/list.c:21) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)
  - indirect: 7 B in 1 block in test "test_drop_list", allocated at push (native/list.c:22) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)
  - indirect: 6 B in 1 block in test "test_drop_list", allocated at push (native/list.c:22) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)`

describe.each(FRAMEWORKS)('the $name example, installed from the packed package', (f) => {
  it('runs as the example says (npm test), and a test file with leaks fails where and how it should', async () => {
    const { report, outcomes, failures, stacks, exitCode, output } = await runFramework(f, [], { npmTest: true })
    expect(exitCode).not.toBe(0)
    expect(output).not.toMatch(/sourcemap .* points to missing source files/i)
    expect(outcomes).toEqual({
      // the example itself: all green
      'the list library > leaks nothing': 'passed',
      'the list library > allocates two blocks per item, and nothing for an empty list': 'passed',
      'the list library > holds three items at most at once: 3 x (16 + 2) bytes': 'passed',
      'the list library > keeps its allocation counts (stored in __snapshots__, updated with -u)': 'passed',
      'the list library with its bug switched on > is caught, in the test case that has it': 'passed',
      'list > test_empty': 'passed',
      'list > test_push_three': 'passed',
      'list > test_drop_list': 'passed',
      'list > (outside any test case): exits cleanly and leaks nothing': 'passed',
      // the added file with leaks
      'the leaky build has no leaks': 'failed',
      'test_drop_list leaks at most 16 bytes': 'failed',
      'test_push_three allocates at most 5 times': 'failed',
      'test_push_three peaks at most 50 bytes': 'failed',
      'test_push_three leaks nothing': 'passed',
      'list --leak > test_empty': 'passed',
      'list --leak > test_push_three': 'passed',
      'list --leak > test_drop_list': 'failed',
      'list --leak > (outside any test case): exits cleanly and leaks nothing': 'passed',
    })
    expect(failures['the leaky build has no leaks']).toBe(NO_LEAKS_FAILURE)
    expect(failures['test_drop_list leaks at most 16 bytes']).toBe(`expect(run.test("test_drop_list")).toLeakAtMost({ bytes: 16 })

Expected at most 16 bytes to leak, found 45 bytes in 4 blocks in test "test_drop_list":
  - definite: 16 B in 1 block, allocated at push (native/list.c:21) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)
  - indirect: 16 B in 1 block, allocated at push (native/list.c:21) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)
  - indirect: 7 B in 1 block, allocated at push (native/list.c:22) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)
  - indirect: 6 B in 1 block, allocated at push (native/list.c:22) <- test_drop_list (native/list.c:49) <- main (native/list.c:67)`)
    expect(failures['test_push_three allocates at most 5 times']).toBe(`expect(run.test("test_push_three")).toAllocateAtMost({ allocations: 5 })

Expected at most 5 allocations, found 6 allocations of 54 bytes (6 frees) in test "test_push_three".`)
    // push(push(push(...))): three calls from one line, their sites read as one
    expect(failures['test_push_three peaks at most 50 bytes']).toBe(`expect(run.test("test_push_three")).toPeakAtMost({ bytes: 50 })

Expected a peak of at most 50 bytes live at once, found 54 bytes live at once in test "test_push_three" (the whole heap's: 54 bytes).
Live at its peak:
  - 48 B in 3 blocks, allocated at push (native/list.c:21) <- test_push_three (native/list.c:44) <- main (native/list.c:66)
  - 6 B in 3 blocks, allocated at push (native/list.c:22) <- test_push_three (native/list.c:44) <- main (native/list.c:66)`)
    // describeNative's failures point at the line of the user's file that called it, not only at heapspec
    expect(stacks['list --leak > test_drop_list']).toMatch(new RegExp(`${f.leakyFile.replaceAll('.', '\\.')}:\\d+:\\d+`))
    expect(failures['list --leak > test_drop_list']).toMatch(/^expect\(run\.test\("test_drop_list"\)\)\.toHaveNoLeaks\(\)\n\nExpected no leaks, found 4 leaks \(45 B\) in test "test_drop_list":\n {2}- definite: 16 B in 1 block, allocated at push \(native\/list\.c:21\)/)

    // The first run wrote the counts into the framework's own snapshot file.
    expect(report.snapshot.added).toBe(1)
    const written = readFileSync(join(project(f), f.snapshot), 'utf8')
    expect(written).toContain('keeps its allocation counts')
    for (const line of ['"allocations": 6,', '"frees": 6,', '"bytesAllocated": 54,', '"definite": {']) expect(written).toContain(line)
  })

  it('honours the snapshot on the next run, fails on a changed count, and -u updates it', async () => {
    const file = join(project(f), f.snapshot)
    const written = readFileSync(file, 'utf8')

    const again = await runFramework(f, [f.listTest])
    expect(again.report.success, again.output).toBe(true)
    expect(again.report.snapshot).toMatchObject({ added: 0, matched: 1, unmatched: 0, updated: 0 })
    expect(readFileSync(file, 'utf8')).toBe(written)

    writeFileSync(file, written.replace('"allocations": 6,', '"allocations": 5,'))
    const changed = await runFramework(f, [f.listTest])
    expect(changed.report.success).toBe(false)
    expect(changed.report.snapshot.unmatched).toBe(1)
    const failure = changed.failures['the list library > keeps its allocation counts (stored in __snapshots__, updated with -u)']!
    // Jest's message carries the diff; Vitest's reporter prints it beside the message.
    expect(failure).toMatch(f.name === 'jest' ? /^expect\(received\)\.toMatchAllocationSnapshot\(\)\n\nSnapshot name: `the list library keeps its allocation counts .* 1`/ : /^Snapshot `the list library > keeps its allocation counts .* 1` mismatched$/)
    expect(stripVTControlCharacters(changed.output)).toMatch(/- {3}"allocations": 5,\n\s*\+ {3}"allocations": 6,/)

    const updated = await runFramework(f, [f.listTest, '-u'])
    expect(updated.report.success, updated.output).toBe(true)
    expect(updated.report.snapshot.updated).toBe(1)
    expect(readFileSync(file, 'utf8')).toBe(written)
  })

  it('in CI mode, refuses to write a missing snapshot', async () => {
    const file = join(project(f), f.snapshot)
    rmSync(file)
    const ci = await runFramework(f, [f.listTest], { ci: true })
    expect(ci.report.success).toBe(false)
    expect(ci.failures['the list library > keeps its allocation counts (stored in __snapshots__, updated with -u)']).toMatch(f.name === 'jest' ? /New snapshot was not written\. The update flag must be explicitly passed to write a new snapshot\./ : /^Snapshot `.*` mismatched$/)
    expect(existsSync(file)).toBe(false)
  })
})

/** Every package name under `dir`'s node_modules, nested ones too. */
function installedPackages(dir: string): string[] {
  const names: string[] = []
  const walk = (modules: string): void => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue
      const scoped = entry.startsWith('@') ? readdirSync(join(modules, entry)).map((e) => `${entry}/${e}`) : [entry]
      for (const name of scoped) {
        names.push(name)
        walk(join(modules, name, 'node_modules'))
      }
    }
  }
  walk(join(dir, 'node_modules'))
  return names
}

describe.each(FRAMEWORKS)('a new $name project with the packed package', (f) => {
  it('runs a clean and a leaking test: one passes, one fails saying what leaked where', async () => {
    const { outcomes, failures } = await runFramework(f, [], { cwd: fresh(f) })
    expect(outcomes).toEqual({ 'a clean test case': 'passed', 'a leaking test case': 'failed' })
    expect(failures['a leaking test case']).toMatch(
      /^expect\(run\.test\("test_leaks_two"\)\)\.toHaveNoLeaks\(\)\n\nExpected no leaks, found 2 leaks \(96 B\) in test "test_leaks_two":\n {2}- definite: 48 B in 1 block, allocated at leak \(\S*debugee\/tests\.c:35\)/,
    )
  })

  it(f.name === 'vitest' ? 'pulls in no Jest package' : 'has what the Jest entry points load', () => {
    const installed = installedPackages(fresh(f))
    const jestPackages = installed.filter((n) => /^(jest|jest-.*|@jest\/.*|babel-jest|expect)$/.test(n))
    if (f.name === 'vitest') expect(jestPackages).toEqual([])
    else expect(jestPackages).toEqual(expect.arrayContaining(['jest', 'jest-snapshot', '@jest/reporters']))
    expect(installed).toContain('heapspec')
  })
})

describe('the packed package', () => {
  let unpacked: string
  let files: string[]
  beforeAll(async () => {
    unpacked = join(work, 'unpacked')
    mkdirSync(unpacked)
    await execa('tar', ['-xzf', tarball, '-C', unpacked])
    files = (await execa('tar', ['-tzf', tarball])).stdout.split('\n').map((p) => p.replace(/^package\//, ''))
  })

  it('holds the build, the LICENSE and the sources its maps point to, and not the bench', () => {
    for (const file of ['LICENSE', 'dist/src/index.js', 'dist/src/cli.js', 'dist/cjs/src/index.cjs', 'dist/cjs/matchers/jest.cjs', 'dist/matchers/vitest.d.ts', 'src/heapspec.h']) expect(files).toContain(file)
    expect(files.filter((p) => p.startsWith('dist/test/'))).toEqual([])
    const missing: string[] = []
    for (const map of files.filter((p) => p.endsWith('.js.map'))) {
      const { sources } = JSON.parse(readFileSync(join(unpacked, 'package', map), 'utf8')) as { sources: string[] }
      for (const source of sources) {
        const target = resolve(dirname(join(unpacked, 'package', map)), source)
        if (!existsSync(target)) missing.push(`${map} -> ${source}`)
      }
    }
    expect(missing).toEqual([])
  })

  it('holds every C source the backends compile, and the suppressions and scripts they read', () => {
    const sources = readdirSync(join(ROOT, 'src', 'capture', 'preload')).filter((f) => f.endsWith('.c')).map((f) => `src/capture/preload/${f}`)
    expect(sources.length).toBeGreaterThan(10)
    for (const file of [...sources, 'src/capture/launcher.c', 'src/suppressions/glibc.supp', 'src/capture/gdb/heapspec_gdb.py', 'src/capture/valgrind/heapspec_vgdb.py']) expect(files).toContain(file)
  })

  it("loads each ESM entry point as one bundle: no dependency's own files at import (execa's 40 modules took 0.15 s of every test file's start)", () => {
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package', 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> }
    // what the bundles leave to be loaded: the optional peers and the few kept out for their size or their own loading
    const external = new Set(['picocolors', 'saxes', 'istanbul-lib-report', 'vitest', 'jest-snapshot', '@jest/reporters'])
    const bare = new Set<string>()
    const seen = new Set<string>()
    const visit = (file: string): void => {
      if (seen.has(file)) return
      seen.add(file)
      const text = readFileSync(file, 'utf8')
      // esbuild's output: `import ... from "x";` and `export ... from "x";` at a line's start, `import("x")`
      for (const m of text.matchAll(/^(?:import|export)\b[^;"']*?\bfrom\s*"([^"]+)"|^import\s*"([^"]+)"|\bimport\(\s*"([^"]+)"\s*\)/gm)) {
        const spec = (m[1] ?? m[2] ?? m[3])!
        if (spec.startsWith('.')) visit(resolve(dirname(file), spec))
        else if (!spec.startsWith('node:')) bare.add(spec)
      }
    }
    const entries = Object.entries(manifest.exports).flatMap(([name, target]) => (typeof target === 'string' || name === './markers' ? [] : [target.default!]))
    expect(entries.length).toBe(6)
    for (const entry of entries) visit(join(unpacked, 'package', entry))
    expect([...bare].filter((spec) => !external.has(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!)).sort()).toEqual([])
    expect(seen.size).toBeGreaterThan(6)
  })

  it('depends on no test framework: those are optional peers, for the entry points that load them', () => {
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>
      peerDependencies: Record<string, string>
      peerDependenciesMeta: Record<string, { optional?: boolean }>
      os: string[]
      cpu: string[]
      license: string
    }
    expect(Object.keys(manifest.dependencies).filter((n) => /jest|vitest/.test(n))).toEqual([])
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual(['@jest/reporters', 'jest', 'jest-snapshot', 'vitest'])
    for (const peer of Object.keys(manifest.peerDependencies)) expect(manifest.peerDependenciesMeta[peer]?.optional, peer).toBe(true)
    expect(manifest).toMatchObject({ os: ['linux'], cpu: ['x64'], license: 'MIT' })
  })
})

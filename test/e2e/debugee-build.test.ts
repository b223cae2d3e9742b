import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../support/debugee.js'

// `npm run demo` and `npm test` build debugee/ with make: on a machine without g++ or GoogleTest the
// build makes what it can and says in one line what it left out and which package adds it.
async function build(vars: string[]) {
  const out = mkdtempSync(join(tmpdir(), 'heapspec-debugee-'))
  const result = await execa('make', ['-s', '-C', join(ROOT, 'debugee'), `B=${out}`, ...vars], { reject: false, all: true })
  return { out, exitCode: result.exitCode, output: result.all ?? '' }
}

describe('building debugee/ with parts of the toolchain missing', () => {
  it('without g++: the C programs, and one line naming the C++ ones skipped and g++', async () => {
    const { out, exitCode, output } = await build(['CXX=no-such-g++'])
    expect(output.trim()).toBe('debugee: skipped cxx verdicts-cxx tests-overloads errors errors-tests free-mismatch field/same-depth field/churn-threads field/tests-throw field/multiple-inheritance field/new-throws field/nothrow-fails field/new-handler scale/map-threads scale/map-threads-lsan gtest-plain gtest-listener addon/entries.node addon/libshelf.so: apt-get install g++ adds them.')
    expect(exitCode).toBe(0)
    for (const built of ['threads', 'definite', 'tests']) expect(existsSync(join(out, built)), built).toBe(true)
    for (const skipped of ['cxx', 'verdicts-cxx', 'free-mismatch', 'gtest-plain']) expect(existsSync(join(out, skipped)), skipped).toBe(false)
    rmSync(out, { recursive: true, force: true })
  })

  it("without GoogleTest's headers, libraries or sources: all but the GoogleTest suite, and libgtest-dev named", async () => {
    const { out, exitCode, output } = await build(['GTEST_HEADER=/nonexistent/gtest.h', 'GTEST_PACKAGED=', 'GTEST_SRC=/nonexistent'])
    expect(output.trim()).toBe('debugee: skipped gtest-plain gtest-listener: apt-get install libgtest-dev adds them.')
    expect(exitCode).toBe(0)
    for (const built of ['threads', 'cxx', 'errors']) expect(existsSync(join(out, built)), built).toBe(true)
    expect(existsSync(join(out, 'gtest-listener'))).toBe(false)
    rmSync(out, { recursive: true, force: true })
  })
})

import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../support/debugee.js'

// The matchers type-check as users write them, importing the built package by name ('heapspec/vitest',
// 'heapspec/jest'), so the exports map's types are checked too. npm test builds before it runs.
function typecheck(project: string): string {
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(import.meta.dirname, project)], { cwd: ROOT, encoding: 'utf8' })
    return ''
  } catch (error) {
    return (error as { stdout?: string }).stdout || String(error)
  }
}

// tsconfig's `types` finds a package in node_modules, never by the package's own name as an import
// does: heapspec sits in test/types/node_modules as it sits in a user's project.
const installed = join(import.meta.dirname, 'node_modules')
beforeAll(() => {
  rmSync(installed, { recursive: true, force: true })
  mkdirSync(installed)
  symlinkSync(ROOT, join(installed, 'heapspec'))
})
afterAll(() => rmSync(installed, { recursive: true, force: true }))

describe('matcher types', () => {
  it.each(['tsconfig.vitest.json', 'tsconfig.jest.json'])('%s type-checks, and misuse does not', (project) => {
    expect(typecheck(project)).toBe('')
  })

  // The README's one line for a project that registers the matchers only in the framework's config.
  it.each([
    ['Vitest, setupFiles only', 'tsconfig.vitest-setup-files.json'],
    ['Jest with @jest/globals, setupFilesAfterEnv only', 'tsconfig.jest-globals.json'],
    ['Jest with @types/jest globals, setupFilesAfterEnv only', 'tsconfig.jest-types-globals.json'],
  ])('%s: "types": ["heapspec/..."] types the matchers', (_name, project) => {
    expect(typecheck(project)).toBe('')
  })

  it('without that line, a setupFiles-only project does not know the matchers', () => {
    expect(typecheck('tsconfig.vitest-setup-files-untyped.json')).toContain("error TS2339: Property 'toHaveNoLeaks' does not exist on type 'Assertion<HeapRun>'.")
  })
})

import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
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

describe('matcher types', () => {
  it.each(['tsconfig.vitest.json', 'tsconfig.jest.json'])('%s type-checks, and misuse does not', (project) => {
    expect(typecheck(project)).toBe('')
  })
})

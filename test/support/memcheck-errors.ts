import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { parseMemcheckXml } from '../../src/capture/valgrind/xml.js'
import type { MemoryError } from '../../src/model/types.js'
import { ROOT } from './debugee.js'

/** What plain memcheck says of a command's memory errors, and what the program itself did under it. */
export interface MemcheckErrors {
  errors: MemoryError[]
  exitCode: number | undefined
  stdout: string
  stderr: string
}

/**
 * Runs `command` under plain `valgrind --xml=yes` (its XML to a file, so the program's own output is
 * its own) and reads memcheck's error list, source paths relative to the repository as heapspec's.
 */
export async function memcheckErrors(command: string[]): Promise<MemcheckErrors> {
  const dir = mkdtempSync(join(tmpdir(), 'heapspec-memcheck-errors-'))
  try {
    const xml = join(dir, 'memcheck.xml')
    const result = await execa('valgrind', ['--xml=yes', `--xml-file=${xml}`, ...command], { reject: false, input: '', cwd: ROOT, stripFinalNewline: false })
    const parsed = await parseMemcheckXml(readFileSync(xml, 'utf8'), { cwd: ROOT, source: xml })
    return { errors: parsed.errors, exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One frame as the comparison reads it: `file:line`, or the function where there is no line. */
function where(stack: MemoryError['stack']): string | null {
  const frame = stack[0]
  if (!frame) return null
  return frame.file ? `${frame.file}:${frame.line}` : frame.fn
}

/**
 * An error as two tools can agree on it: kind, words, test case, the bad call's first frame and the
 * address's story (each line with its stack's first frame). Addresses differ between runs: each
 * becomes `0x…`; the offsets and sizes stay.
 */
export function errorShape(error: MemoryError): unknown {
  return {
    kind: error.kind,
    what: error.what,
    test: error.test,
    at: where(error.stack),
    aux: (error.auxStacks ?? []).map((a) => ({ what: a.what.replace(/0x[0-9a-f]+/g, '0x…'), at: where(a.stack) })),
  }
}

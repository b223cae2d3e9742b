/**
 * The HTML report's page of memory errors (`memory-errors.html`): each source line in the user's
 * code where a bad call was made, with the line and its neighbours, and the errors made there:
 * kind, memcheck's words and count, the test case, the stack and the address's story.
 */
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import type { Frame } from '../model/types.js'
import { esc, page, sourceContext } from './html-report.js'
import type { MemoryErrorRow } from './memory-errors.js'
import { errorHeadline } from './memory-errors.js'
import { readProjectSource } from './project-source.js'
import { formatFrame } from './text.js'
import { isUserFrame } from './user-frame.js'

/** The page's file name in a report directory. */
export const MEMORY_ERRORS_PAGE = 'memory-errors.html'

/** The index page's line that leads to the errors page; none without errors. */
export function memoryErrorsLink(rows: MemoryErrorRow[]): string[] {
  if (rows.length === 0) return []
  const cases = new Set(rows.map((r) => r.testCase)).size
  return [
    `<p style="border-left: 5px solid #d32f2f; padding-left: .6em"><a href="${MEMORY_ERRORS_PAGE}">${esc(rows.length.toLocaleString('en-US'))} memory error${rows.length === 1 ? '' : 's'}</a> in ${esc(cases.toLocaleString('en-US'))} test case${cases === 1 ? '' : 's'} (or outside any)</p>`,
  ]
}

function stackList(stack: Frame[]): string {
  return `<ol class="stack">${stack.map((f) => `<li class="frame${isUserFrame(f) ? '' : ' system'}">${esc(formatFrame(f))}</li>`).join('')}</ol>`
}

/** Writes `memory-errors.html` into `dir`; `root` is the project root the sources are read from. */
export function writeMemoryErrorsPage(dir: string, rows: MemoryErrorRow[], root: string): void {
  // by source line of the bad call, files in path order, lines in order
  const byLine = new Map<string, { file: string | null; line: number | null; rows: MemoryErrorRow[] }>()
  for (const row of rows) {
    const file = row.site?.file ?? null
    const line = row.site?.line ?? null
    const key = JSON.stringify([file, line])
    const at = byLine.get(key) ?? { file, line, rows: [] }
    at.rows.push(row)
    byLine.set(key, at)
  }
  const places = [...byLine.values()].sort((a, b) => (a.file ?? '\uffff').localeCompare(b.file ?? '\uffff') || (a.line ?? 0) - (b.line ?? 0))
  const body = ['<p><a href="index.html">&larr; the leak report</a></p>', '<h1>heapspec: memory errors</h1>', `<p>${esc(rows.length.toLocaleString('en-US'))} memory error${rows.length === 1 ? '' : 's'}, by the line of the bad call</p>`]
  for (const place of places) {
    const where = place.file === null ? '(no source line)' : `${place.file}${place.line === null ? '' : `, line ${place.line}`}`
    body.push('<section class="high">', `<h2><code>${esc(where)}</code></h2>`)
    const source = place.file === null ? undefined : readProjectSource(root, place.file)?.split('\n')
    const shown = sourceContext(source, place.line)
    if (shown !== undefined) body.push(shown)
    for (const { error, testCase, files } of place.rows) {
      body.push(`<p><strong>${esc(errorHeadline(error))}</strong> in <code>${esc(testCase)}</code>${files.length > 0 ? ` <span class="muted">(run in ${esc(files.join(', '))})</span>` : ''}</p>`)
      body.push(stackList(error.stack))
      for (const aux of error.auxStacks ?? []) body.push(`<p>${esc(aux.what)}</p>`, ...(aux.stack.length > 0 ? [stackList(aux.stack)] : []))
    }
    body.push('</section>')
  }
  writeFileSync(join(dir, MEMORY_ERRORS_PAGE), page('memory errors — heapspec leak report', body))
}

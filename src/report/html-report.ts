/**
 * The HTML leak report: `index.html` lists the source files that leaked, worst first, and the
 * tests that leaked; `files/<file>.html` shows one file's allocation sites with their leaked
 * bytes and blocks by kind, the tests involved and the stacks. Written through istanbul's context
 * (its file writer, its watermarks, its visitor).
 */
import type { Context, Watermarks } from 'istanbul-lib-report'
import { LEAK_KINDS, type Amount, type Frame, type LeakKind, type LeakSummary } from '../model/types.js'
import { JSON_SUMMARY_FILE } from './json-summary.js'
import { amountOf, type AllocationSite, type LeakRootNode, type SourceFileNode } from './leak-tree.js'
import { LeakReportBase } from './report-base.js'
import type { TestLeaks } from './test-summary.js'
import { formatAmount, formatFrame, KIND_WORDS } from './text.js'
import { heapCharts } from './heap-chart.js'
import type { RecordedRun } from './saved-runs.js'
import { isUserFrame } from './user-frame.js'

/** The watermark heapspec sets on istanbul's context: leaked bytes (of the failing kinds) below the first are fine, from the second on bad. */
export const LEAKED_BYTES_WATERMARK = 'leakedBytes'

/** Tests the index page lists, worst first; leak-summary.json has them all. */
export const MAX_TESTS_LISTED = 1000

/** `low` (below the first watermark), `medium` or `high`: how bad a leaked amount is, by the context's watermarks. */
export function severity(context: Context, bytes: number): string {
  return context.classForPercent(LEAKED_BYTES_WATERMARK as keyof Watermarks, bytes)
}

/** Anything written into a page, escaped: names, paths and numbers alike come from saved runs. */
export function esc(value: string | number): string {
  return String(value).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;')
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.15em; margin: 1.6em 0 .4em; }
h1 code, h2 code { font-size: 1em; }
a { color: #0b5cad; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre, .frame { font-family: ui-monospace, Menlo, monospace; font-size: 13px; }
tr.low td:first-child, section.low { border-left: 5px solid #4caf50; }
tr.medium td:first-child, section.medium { border-left: 5px solid #f0b400; }
tr.high td:first-child, section.high { border-left: 5px solid #d32f2f; }
section { padding-left: 1em; margin: 1.2em 0; }
pre.source { background: #f6f6f6; padding: .4em .6em; margin: .4em 0; }
pre.source .line { color: #777; } pre.source .line.site { color: #222; background: #fde8e8; font-weight: bold; }
.legend { margin-top: 2.5em; color: #555; font-size: 13px; } .legend dt { font-weight: bold; float: left; clear: left; width: 9em; }
.legend dd { margin: 0 0 .2em 9.5em; } .legend .bar { display: inline-block; width: 5px; height: 1em; vertical-align: middle; margin-right: .3em; }
ol.stack { margin: .3em 0 .8em; } ol.stack li.system { color: #888; }
.muted { color: #777; }
`

/** A whole page, in the report's style. */
export function page(title: string, body: string[]): string {
  return ['<!doctype html>', '<html lang="en">', '<head>', '<meta charset="utf-8">', `<title>${esc(title)}</title>`, `<style>${STYLE}</style>`, '</head>', '<body>', ...body, '</body>', '</html>'].join('\n')
}

/** `16 B / 1` or a dash. */
function cell(a: Amount): string {
  return a.blocks === 0 ? '<td class="n muted">–</td>' : `<td class="n">${esc(a.bytes.toLocaleString('en-US'))} B / ${esc(a.blocks.toLocaleString('en-US'))}</td>`
}

function kindHeaders(): string {
  return LEAK_KINDS.map((k) => `<th>${esc(KIND_WORDS[k])}<br><span class="muted">bytes / blocks</span></th>`).join('')
}

function kindCells(leaked: LeakSummary): string {
  return LEAK_KINDS.map((k) => cell(leaked[k])).join('')
}

/** Totals in words: `definitely lost: 32 bytes in 2 blocks, ...` */
function totals(leaked: LeakSummary): string {
  const parts = LEAK_KINDS.filter((k) => leaked[k].blocks > 0).map((k) => `${KIND_WORDS[k]}: ${formatAmount(leaked[k])}`)
  return parts.length > 0 ? parts.join(', ') : 'no leaks'
}

/** A file name for a source file's page, unique in the report. */
function pageNames(files: SourceFileNode[]): Map<SourceFileNode, string> {
  const names = new Map<SourceFileNode, string>()
  const used = new Set<string>()
  for (const f of files) {
    // a file system takes names of 255 bytes at most
    const base = f.file.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-100) || 'file'
    let name = `${base}.html`
    for (let i = 2; used.has(name); i++) name = `${base}-${i}.html`
    used.add(name)
    names.set(f, name)
  }
  return names
}

/** How a test stands with its leaks, in the tests table (answers.ts). */
const STATUS_WORDS: Record<TestLeaks['status'], string> = { failed: 'failed the test', tolerated: 'allowed by the test', unchecked: 'checked by no test' }

/** Lines shown above and below an allocation site's line. */
const SOURCE_CONTEXT = 2

/** The site's line with a few lines around it, the site's own marked; nothing when the source has no such line. */
export function sourceContext(source: string[] | undefined, line: number | null): string | undefined {
  if (!source || line === null || source[line - 1] === undefined) return undefined
  const first = Math.max(1, line - SOURCE_CONTEXT)
  const last = Math.min(source.length, line + SOURCE_CONTEXT)
  const width = String(last).length
  const rows: string[] = []
  for (let n = first; n <= last; n++) rows.push(`<span class="line${n === line ? ' site' : ''}">${String(n).padStart(width)} | ${esc(source[n - 1]!)}</span>`)
  return `<pre class="source">${rows.join('\n')}</pre>`
}

/** What memcheck's kinds mean, and what the coloured bars say. */
const KIND_MEANINGS: Record<LeakKind, string> = {
  definite: 'no pointer to the block is left anywhere',
  indirect: 'pointed to only from lost blocks (freeing those would have freed it)',
  possible: 'only a pointer into the middle of the block is left',
  reachable: 'still pointed to when the program ended',
}

function legend(context: Context, kinds: readonly LeakKind[]): string {
  const [low, high] = (context.watermarks as unknown as Record<string, [number, number]>)[LEAKED_BYTES_WATERMARK] ?? [1, 1024]
  const failing = kinds.map((k) => KIND_WORDS[k]).join(', ')
  const kindRows = LEAK_KINDS.map((k) => `<dt>${esc(KIND_WORDS[k])}</dt><dd>${esc(KIND_MEANINGS[k])}${kinds.includes(k) ? '' : ' (reported, not failing)'}</dd>`)
  const bar = (color: string, text: string): string => `<dd><span class="bar" style="background:${color}"></span>${esc(text)}</dd>`
  return [
    '<dl class="legend">',
    ...kindRows,
    '<dt>bytes / blocks</dt><dd>leaked bytes, and the number of blocks they are in</dd>',
    '<dt>bars</dt>',
    bar('#4caf50', `fewer than ${low} bytes of the failing kinds (${failing}) leaked`),
    bar('#f0b400', `${low} bytes or more`),
    bar('#d32f2f', `${high} bytes or more`),
    '</dl>',
  ].join('\n')
}

/** Options of the HTML report. */
export interface HtmlReportOptions {
  /** The per-test rows, for the index page. */
  tests: TestLeaks[]
  /** Lines of HTML the index page shows under its headline (the link to the memory errors' page). */
  notices?: string[]
  /** The runs, for the index page's live-heap charts (heap-chart.ts). */
  runs?: readonly RecordedRun[]
}

/** The HTML report, as an istanbul report visitor over the leak tree. */
export class HtmlReport extends LeakReportBase {
  private pages = new Map<SourceFileNode, string>()
  private kinds: readonly LeakKind[] = []

  constructor(private readonly options: HtmlReportOptions) {
    super()
  }

  override onStart(root: LeakRootNode): void {
    this.pages = pageNames(root.files)
    this.kinds = root.kinds
  }

  override onSummary(root: LeakRootNode, context: Context): void {
    const body = ['<h1>heapspec leak report</h1>', `<p>${esc(totals(root.leaked))} &middot; ${esc(root.runs)} run${root.runs === 1 ? '' : 's'}</p>`]
    body.push(...(this.options.notices ?? []))
    if (root.files.length === 0) body.push('<p>Nothing leaked.</p>')
    else {
      body.push('<h2>Source files</h2>', `<table><thead><tr><th>File</th>${kindHeaders()}<th>Sites</th><th>Tests</th></tr></thead><tbody>`)
      for (const f of root.files) {
        const tests = new Set(f.sites.flatMap((s) => s.tests))
        const name = f.userCode ? esc(f.file) : `<span class="muted">${esc(f.file)}</span>`
        body.push(
          `<tr class="${esc(severity(context, amountOf(f.leaked, this.kinds).bytes))}"><td><a href="files/${esc(this.pages.get(f)!)}">${name}</a></td>${kindCells(f.leaked)}<td class="n">${esc(f.sites.length)}</td><td class="n">${esc(tests.size)}</td></tr>`,
        )
      }
      body.push('</tbody></table>')
    }
    if (this.options.tests.length > 0) {
      body.push('<h2>Tests</h2>', `<table><thead><tr><th>Test</th><th>Leaks</th>${kindHeaders()}<th>Top allocation site</th></tr></thead><tbody>`)
      for (const t of this.options.tests.slice(0, MAX_TESTS_LISTED)) {
        body.push(`<tr class="${esc(severity(context, amountOf(t.leaked, this.kinds).bytes))}"><td>${esc(t.test)}</td><td>${esc(STATUS_WORDS[t.status])}</td>${kindCells(t.leaked)}<td><code>${esc(t.topSite ?? '')}</code></td></tr>`)
      }
      body.push('</tbody></table>')
      const more = this.options.tests.length - MAX_TESTS_LISTED
      if (more > 0) body.push(`<p class="muted">... and ${esc(more.toLocaleString('en-US'))} more tests (${esc(JSON_SUMMARY_FILE)} lists them all)</p>`)
    }
    body.push(...heapCharts(this.options.runs ?? []))
    if (root.files.length > 0 || this.options.tests.length > 0) body.push(legend(context, this.kinds))
    const out = context.writer.writeFile('index.html')
    out.println(page('heapspec leak report', body))
    out.close()
  }

  override onDetail(file: SourceFileNode, context: Context): void {
    const body = ['<p><a href="../index.html">&larr; all files</a></p>', `<h1><code>${esc(file.file)}</code></h1>`, `<p>${esc(totals(file.leaked))}</p>`]
    const source = file.userCode ? this.sourceLines(file.file, context) : undefined
    for (const site of file.sites) body.push(...this.site(site, source, context))
    body.push(legend(context, this.kinds))
    const out = context.writer.writeFile(`files/${this.pages.get(file)!}`)
    out.println(page(`${file.file} — heapspec leak report`, body))
    out.close()
  }

  private sourceLines(file: string, context: Context): string[] | undefined {
    try {
      return context.getSource(file).split('\n')
    } catch {
      return undefined
    }
  }

  private site(site: AllocationSite, source: string[] | undefined, context: Context): string[] {
    const where = `${site.fn ?? '???'}${site.line === null ? '' : `, line ${site.line}`}`
    const out = [`<section class="${esc(severity(context, amountOf(site.leaked, this.kinds).bytes))}">`, `<h2><code>${esc(where)}</code></h2>`]
    const shown = sourceContext(source, site.line)
    if (shown !== undefined) out.push(shown)
    out.push(`<table><thead><tr>${kindHeaders()}</tr></thead><tbody><tr>${kindCells(site.leaked)}</tr></tbody></table>`)
    const more = site.moreNames ? ', <span class="muted">and more</span>' : ''
    if (site.tests.length > 0) out.push(`<p>Tests: ${site.tests.map((t) => `<code>${esc(t)}</code>`).join(', ')}${more}</p>`)
    if (site.testCases.length > 0) out.push(`<p>Native test cases: ${site.testCases.map((t) => `<code>${esc(t)}</code>`).join(', ')}${more}</p>`)
    for (const stack of site.stacks) {
      const cases = stack.testCases.length > 0 ? ` in ${stack.testCases.map((t) => `"${t}"`).join(', ')}${stack.moreNames ? ' and more' : ''}` : ''
      // One leak seen by several runs is that leak, in so many runs: not one leak of the sum.
      const runs = stack.runs > 1 ? `, in ${stack.runs} runs` : ''
      out.push(`<p><strong>${esc(`${formatAmount(stack)} ${KIND_WORDS[stack.kind]}`)}</strong>${esc(cases + runs)} <span class="muted">(${esc(stack.programs.join('; '))}${stack.moreNames ? ' and more' : ''})</span></p>`)
      const frames = stack.frames.map((f: Frame) => `<li class="frame${isUserFrame(f) ? '' : ' system'}">${esc(formatFrame(f))}</li>`)
      if (stack.moreFrames) frames.push(`<li class="frame system">... and ${esc(stack.moreFrames.toLocaleString('en-US'))} more frames</li>`)
      out.push(`<ol class="stack">${frames.join('')}</ol>`)
    }
    if (site.moreStacks) {
      const { stacks, ...leaked } = site.moreStacks
      out.push(`<p class="muted">${esc(`... and ${stacks.toLocaleString('en-US')} more stack${stacks === 1 ? '' : 's'} (${formatAmount(leaked)}), not listed`)}</p>`)
    }
    out.push('</section>')
    return out
  }
}

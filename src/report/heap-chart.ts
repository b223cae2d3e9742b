/**
 * The HTML report's live-heap charts: per run that carries a heap series (preload, gdb), the
 * bytes live over the run as an inline SVG (no script, no dependency in the browser), with each
 * test case's span shaded and named, and the run's peak marked, so that a glance shows which test
 * case holds the memory. Drawn from the run JSON alone, so merged saved runs draw the same.
 */
import type { HeapSeries, RunJson } from '../model/types.js'
import type { RecordedRun } from './saved-runs.js'
import { humanBytes } from './text.js'

/** The chart's drawing area, in SVG units (and CSS pixels). */
export const CHART_WIDTH = 720
export const CHART_HEIGHT = 160
/** Room left of the plot for the byte scale, and below it for the event scale. */
const LEFT = 64
const BOTTOM = 18

/** Runs charted at most on one page (a merge of many shards): the rest are counted. */
export const MAX_CHARTS = 50

/** Anything written into a page, escaped: names come from saved runs. */
function esc(value: string | number): string {
  return String(value).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;')
}

/** Two decimals at most: the SVG stays small and the test can recompute every coordinate. */
const round = (n: number): number => Math.round(n * 100) / 100

/**
 * Where a point of the series is drawn: events along x (0 to the last event), bytes up y (0 to
 * the most). The HTML report's test reads the scale back from the SVG's data attributes.
 */
export function chartPoint(x: number, bytes: number, lastEvent: number, maxBytes: number): [number, number] {
  const plotWidth = CHART_WIDTH - LEFT
  const plotHeight = CHART_HEIGHT - BOTTOM
  return [round(LEFT + (lastEvent > 0 ? (x / lastEvent) * plotWidth : 0)), round(plotHeight - (maxBytes > 0 ? (bytes / maxBytes) * (plotHeight - 4) : 0))]
}

const CHART_STYLE = `
.heap-charts figure { margin: 1em 0 1.6em; }
.heap-charts figcaption { margin-bottom: .3em; }
.heap-chart { display: block; background: #fafafa; outline: 1px solid #e4e4e4; }
.heap-chart .span { fill: #dbe8f7; } .heap-chart .span.odd { fill: #eef4fb; }
.heap-chart .span-name { font: 11px system-ui, sans-serif; fill: #35506e; }
.heap-chart .series { fill: none; stroke: #0b5cad; stroke-width: 1.5; }
.heap-chart .peak { fill: #d32f2f; }
.heap-chart .axis { font: 11px ui-monospace, Menlo, monospace; fill: #666; }
.heap-chart .base { stroke: #bbb; }
`

/** One run's chart, or nothing without a series. */
function chart(run: RunJson, index: number): string | undefined {
  const series: HeapSeries | undefined = run.heapSeries
  if (!series || series.points.length === 0) return undefined
  const spans = series.spans.filter((s) => run.tests[s.test] !== undefined)
  const lastEvent = Math.max(series.points.at(-1)![0], ...spans.map((s) => s.to))
  const maxBytes = Math.max(...series.points.map(([, bytes]) => bytes))
  const peakAt = series.points.findIndex(([, bytes]) => bytes === maxBytes)
  const plotHeight = CHART_HEIGHT - BOTTOM
  const out: string[] = [
    `<svg class="heap-chart" data-run="${index}" data-last-event="${lastEvent}" data-max-bytes="${maxBytes}" width="${CHART_WIDTH}" height="${CHART_HEIGHT}" viewBox="0 0 ${CHART_WIDTH} ${CHART_HEIGHT}" role="img" aria-label="live heap bytes over the run">`,
  ]
  spans.forEach((span, i) => {
    const [x0] = chartPoint(span.from, 0, lastEvent, maxBytes)
    const [x1] = chartPoint(span.to, 0, lastEvent, maxBytes)
    const name = run.tests[span.test]!.name
    const peak = run.tests[span.test]!.peak
    const title = `${name}: events ${span.from}–${span.to}${peak ? `, its own peak ${peak.bytes.toLocaleString('en-US')} bytes, the heap's ${peak.heapBytes.toLocaleString('en-US')}` : ''}`
    out.push(`<rect class="span${i % 2 ? ' odd' : ''}" data-test="${esc(name)}" x="${x0}" y="0" width="${round(Math.max(x1 - x0, 1))}" height="${plotHeight}"><title>${esc(title)}</title></rect>`)
    // a name only where it fits (about 6 units a character)
    if (x1 - x0 >= 6 * Math.min(name.length, 40) + 6) out.push(`<text class="span-name" x="${round(x0 + 3)}" y="12">${esc(name.slice(0, 40))}</text>`)
  })
  const points = series.points.map(([x, bytes]) => chartPoint(x, bytes, lastEvent, maxBytes).join(',')).join(' ')
  out.push(`<line class="base" x1="${LEFT}" y1="${plotHeight}" x2="${CHART_WIDTH}" y2="${plotHeight}"/>`)
  out.push(`<polyline class="series" data-points="${esc(series.points.map((p) => p.join(':')).join(' '))}" points="${points}"/>`)
  const [px, py] = chartPoint(series.points[peakAt]![0], maxBytes, lastEvent, maxBytes)
  out.push(`<circle class="peak" cx="${px}" cy="${py}" r="3"><title>${esc(`peak: ${maxBytes.toLocaleString('en-US')} bytes live`)}</title></circle>`)
  out.push(`<text class="axis" x="2" y="12">${esc(humanBytes(maxBytes))}</text>`, `<text class="axis" x="2" y="${plotHeight}">0 B</text>`)
  out.push(`<text class="axis" x="${LEFT}" y="${CHART_HEIGHT - 4}">0</text>`, `<text class="axis" x="${CHART_WIDTH - 4}" y="${CHART_HEIGHT - 4}" text-anchor="end">${esc(lastEvent.toLocaleString('en-US'))} events</text>`)
  out.push('</svg>')
  const peak = run.peak ? `peak ${esc(run.peak.bytes.toLocaleString('en-US'))} bytes` : `most ${esc(maxBytes.toLocaleString('en-US'))} bytes`
  const caption = `<figcaption><code>${esc(run.program.command.join(' '))}</code> <span class="muted">(${esc(run.backend)}; ${peak})</span></figcaption>`
  return `<figure>${caption}${out.join('')}</figure>`
}

/**
 * The "Live heap" section of the index page: a chart per run with a heap series, in the runs'
 * order; nothing when no run has one (valgrind's runs).
 */
export function heapCharts(runs: readonly RecordedRun[]): string[] {
  const charts: string[] = []
  let more = 0
  runs.forEach(({ run }, i) => {
    if (!run.heapSeries) return
    if (charts.length >= MAX_CHARTS) more++
    else {
      const drawn = chart(run, i)
      if (drawn) charts.push(drawn)
    }
  })
  if (charts.length === 0) return []
  const out = [
    `<section class="heap-charts"><style>${CHART_STYLE}</style>`,
    '<h2>Live heap</h2>',
    '<p class="muted">Bytes live over each run, by allocator event; each test case&rsquo;s span shaded. Hover for figures.</p>',
    ...charts,
  ]
  if (more > 0) out.push(`<p class="muted">... and ${esc(more.toLocaleString('en-US'))} more runs with a series, not drawn</p>`)
  out.push('</section>')
  return out
}

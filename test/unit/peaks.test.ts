import { describe, expect, it } from 'vitest'
import { HeapModel } from '../../src/model/heap.js'
import { HeapSeriesSampler, PeakTracker, SERIES_MAX } from '../../src/model/peaks.js'

describe('PeakTracker', () => {
  it('keeps the stacks live at the first moment of the highest total, rebuilt from the changes since', () => {
    const t = new PeakTracker()
    t.change(1, 100, 1)
    t.change(2, 50, 1)
    t.change(1, -100, -1)
    t.change(3, 150, 1) // 200: the peak
    t.change(2, -50, -1)
    t.change(4, 50, 1) // 200 again: not a new peak
    t.change(3, -150, -1)
    expect({ peak: t.peak, total: t.total }).toEqual({ peak: 200, total: 50 })
    expect(t.sites()).toEqual([
      { stack: 2, bytes: 50, blocks: 1 },
      { stack: 3, bytes: 150, blocks: 1 },
    ])
  })

  it('makes its snapshot once the changes since the peak outnumber the stacks, and keeps it', () => {
    const t = new PeakTracker()
    t.change(7, 1000, 1)
    t.change(8, 10, 1) // 1010: the peak
    t.change(8, -10, -1)
    for (let i = 0; i < 10000; i++) t.change(9 + ((i >> 1) % 3), i % 2 ? -10 : 10, i % 2 ? -1 : 1)
    const atPeak = [
      { stack: 7, bytes: 1000, blocks: 1 },
      { stack: 8, bytes: 10, blocks: 1 },
    ]
    expect(t.sites()).toEqual(atPeak)
    t.change(9, 5, 1)
    expect(t.sites()).toEqual(atPeak)
    t.change(9, 10, 1) // 1005 + 10: a new peak
    expect(t.sites()).toEqual([
      { stack: 7, bytes: 1000, blocks: 1 },
      { stack: 9, bytes: 15, blocks: 2 },
    ])
  })

  it('has no sites before any byte is live (zero-byte blocks make no peak)', () => {
    const t = new PeakTracker()
    t.change(1, 0, 1)
    expect({ peak: t.peak, sites: t.sites() }).toEqual({ peak: 0, sites: [] })
  })
})

describe('HeapSeriesSampler', () => {
  it('keeps one point per event until full, then merges neighbours (their most) and doubles the span', () => {
    const s = new HeapSeriesSampler()
    for (let i = 1; i <= SERIES_MAX; i++) s.note(i % 2 ? i : 0)
    expect(s.points()).toHaveLength(SERIES_MAX)
    s.note(7)
    const points = s.points()
    expect(points).toHaveLength(SERIES_MAX / 2 + 1)
    expect(points.slice(0, 2)).toEqual([
      [1, 1],
      [3, 3],
    ])
    expect(points.at(-1)).toEqual([SERIES_MAX + 1, 7])
  })
})

describe('HeapModel peaks', () => {
  it("a test case's own peak leaves out a fixture made before it; the heap's counts it; a realloc frees first", () => {
    const m = new HeapModel()
    m.allocate(0x100, 1000, 0) // the fixture
    m.beginTest('t')
    m.allocate(0x200, 300, 1)
    m.reallocate(0x200, 0x300, 500, 2) // 300 freed, then 500: 1500 at most, never 1800
    m.free(0x100) // the fixture leaves: not the test's
    m.allocate(0x400, 200, 3)
    m.endTest('t', undefined)
    const peaks = m.peaks()
    expect(peaks.tests).toEqual([{ bytes: 700, heapBytes: 1500, sites: [{ stack: 2, bytes: 500, blocks: 1 }, { stack: 3, bytes: 200, blocks: 1 }] }])
    expect(peaks.run).toEqual({ bytes: 1500, sites: [{ stack: 0, bytes: 1000, blocks: 1 }, { stack: 2, bytes: 500, blocks: 1 }] })
    expect(peaks.series.spans).toEqual([{ from: 1, to: 6 }])
  })

  it("an observer's own figures (P, Q and G lines) stand over the events'", () => {
    const m = new HeapModel()
    m.beginTest('t')
    m.observedTestPeak(64, 128).push({ stack: 5, bytes: 64, blocks: 2 })
    m.endTest('t', undefined)
    m.observedRunPeak(256).push({ stack: 6, bytes: 256, blocks: 1 })
    m.observedHeapSeries([[1, 256]])
    expect(m.peaks()).toEqual({
      run: { bytes: 256, sites: [{ stack: 6, bytes: 256, blocks: 1 }] },
      tests: [{ bytes: 64, heapBytes: 128, sites: [{ stack: 5, bytes: 64, blocks: 2 }] }],
      series: { points: [[1, 256]], spans: [{ from: 0, to: 0 }] },
    })
  })
})

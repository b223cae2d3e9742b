import { describe, expect, it } from 'vitest'
import { formatReport, KIND_LEGEND } from '../../src/report/text.js'
import { parserRun } from '../matchers/run-fixture.js'

// The leak report speaks memcheck's words ("definitely lost", "in use at exit"): a report with
// leaks ends with one line saying what they mean; a clean one does not.
describe('the text report', () => {
  it('ends with a one-line legend of the kinds when something leaked', () => {
    const lines = formatReport(parserRun()).trimEnd().split('\n')
    expect(lines.at(-1)).toBe(KIND_LEGEND)
    expect(lines.at(-2)).toBe('')
    for (const words of ['definitely lost', 'indirectly lost', 'possibly lost', 'still reachable', 'in use at exit']) expect(KIND_LEGEND).toContain(words)
  })

  it('has no legend when nothing leaked', () => {
    const run = parserRun()
    const clean = { ...run, leaks: [], leakSummary: { definite: { bytes: 0, blocks: 0 }, indirect: { bytes: 0, blocks: 0 }, possible: { bytes: 0, blocks: 0 }, reachable: { bytes: 0, blocks: 0 } } }
    expect(formatReport(clean)).not.toContain(KIND_LEGEND)
  })
})

import { describe, expect, it } from 'vitest'
import { EventStream } from '../../src/capture/event-stream.js'

// The capture protocol's lines as the preload interposer writes them: two objects, a stack of the
// program's own, one through the addon, and a bad free made from the program's code.
const PROGRAM = ['1000', '2000']
const ADDON = ['7000', '8000']
const lines = [
  'H 1 preload',
  `M ${PROGRAM.join(' ')} 0 `,
  `M ${ADDON.join(' ')} 7000 /build/Release/addon.node`,
  'S 1 1010 1020',
  'S 2 7010 1030',
  'S 3 1040',
  'S 4 1050 1060',
  'A 1 a000 16 1',
  'A 1 b000 16 2',
  'Z invalid-free 1 3 c000 none',
]

async function stream(objects: RegExp[]): Promise<EventStream> {
  const s = new EventStream('/')
  if (objects.length > 0) s.observeOnly(objects)
  for (const line of lines) await s.line(line)
  return s
}

describe('EventStream.shownPcs', () => {
  it('with every object observed: every stack\'s return addresses', async () => {
    const s = await stream([])
    expect([...s.shownPcs()].sort((a, b) => a - b)).toEqual([0x1010, 0x1020, 0x1030, 0x1040, 0x1050, 0x1060, 0x7010])
  })

  it('with only the addon observed: its stacks\' and the memory errors\', none of the program\'s own', async () => {
    const s = await stream([/\.node$/])
    expect([...s.shownPcs()].sort((a, b) => a - b)).toEqual([0x1030, 0x1040, 0x7010])
  })
})

import { describe, expect, it } from 'vitest'
import { ObjectCode } from '../../src/capture/valgrind/object-code.js'

// /proc/PID/maps of memcheck running node on examples/node-addon (valgrind maps its program's
// objects in its own process), cut to the addon, libc and an anonymous mapping.
const MAPS = `0bc76000-0bc77000 r--p 00000000 fe:00 2206444                            /tmp/x/node-addon/build/Release/addon.node
0bc77000-0bc78000 r-xp 00001000 fe:00 2206444                            /tmp/x/node-addon/build/Release/addon.node
0bc7a000-0bc7b000 rw-p 00003000 fe:00 2206444                            /tmp/x/node-addon/build/Release/addon.node
06231000-06387000 r-xp 00026000 fe:00 339380                             /usr/lib/x86_64-linux-gnu/libc.so.6
0d000000-0d100000 rw-p 00000000 00:00 0 
0e000000-0e001000 r-xp 00000000 fe:00 17                                 /tmp/x/old build/other.node (deleted)
`

describe('ObjectCode', () => {
  const code = ObjectCode.fromMaps(MAPS, [/\.node$/])

  it("places an address by the chosen objects' mappings, a path with spaces or deleted since included", () => {
    expect(code.holdsPc(0xbc7727c)).toBe(true)
    expect(code.holdsPc(0xbc78000)).toBe(true) // a return address just past the last instruction
    expect(code.holdsPc(0x6240000)).toBe(false)
    expect(code.holdsPc(0xd000010)).toBe(false)
    expect(code.holdsPc(0xe000010)).toBe(true)
  })

  it("places a frame by memcheck's object name when it gives one, else by its address", () => {
    expect(code.holdsFrame({ object: '/tmp/x/node-addon/build/Release/addon.node', pc: 0x1 })).toBe(true)
    expect(code.holdsFrame({ object: '/usr/bin/node', pc: 0xbc7727c })).toBe(false)
    expect(code.holdsFrame({ object: null, pc: 0xbc7727c })).toBe(true)
    expect(code.holdsFrame({})).toBe(false)
  })

  it('keeps the mappings it saw before, when a later read finds none (a killed program at its last stop)', () => {
    const later = code.with(ObjectCode.fromMaps('', [/\.node$/]))
    expect(later.holdsPc(0xbc7727c)).toBe(true)
    expect(ObjectCode.none([/\.node$/]).with(code).holdsPc(0xbc7727c)).toBe(true)
  })

  it('knows no address before it has read any mapping', () => {
    expect(ObjectCode.none([/\.node$/]).holdsPc(0xbc7727c)).toBe(false)
    expect(ObjectCode.none([/\.node$/]).holdsObject('/a/addon.node')).toBe(true)
  })
})

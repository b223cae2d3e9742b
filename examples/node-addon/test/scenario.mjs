// The script heapspec runs under a backend: each testCase() is one native test case.
import { createRequire } from 'node:module'
import { testCase } from 'heapspec/markers'

const addon = createRequire(import.meta.url)('../build/Release/addon.node')

testCase('join', () => {
  if (addon.join('heap', 'spec') !== 'heapspec') throw new Error('join is broken')
})

testCase('leakyJoin', () => {
  if (addon.leakyJoin('heap', 'spec') !== 'heapspec') throw new Error('leakyJoin is broken')
})

// Drives the entries addon (debugee/addon/entries.cc): one heapspec test case per addon function,
// each with its blocks known by construction (see entries.cc). Run from the checkout, after
// `npm run build` and `make -C debugee`: node debugee/addon/entries.mjs [CHURN]
import { createRequire } from 'node:module'
import { testCase } from '../../dist/src/markers.js'

const entries = createRequire(import.meta.url)('../build/addon/entries.node')
const churn = Number(process.argv[2] ?? 1000)

const check = (what, got, want) => {
  if (got !== want) throw new Error(`entries.${what} returned ${got}, expected ${want}`)
}
testCase('keep', () => check('keep', entries.keep('kept-one', 3), 1))
testCase('leak', () => check('leak', entries.leak('leaked-one', 5), 5))
testCase('shelve', () => check('shelve', entries.shelve(10), 10))
await testCase('poolLeak', async () => check('poolLeak', await entries.poolLeak(100), 100))
testCase('churn', () => check('churn', entries.churn(churn), churn))
// V8 compiles this function's body while the addon's call is on the stack
testCase('callback', () => check('call', entries.call(() => new Function('a', 'b', 'return [a, b, a + b].join("-")')(1, 2)), '1-2-3'))
console.log(`entries: done (${churn} churned)`)

// The entries addon (debugee/addon/entries.cc) loaded by a Worker, then by the main thread: the
// Worker's exit unloads it (its last handle closed: ld.so runs its finalizers and drops it), and
// the main thread's require loads it anew. Each test case leaks one Entry through `leak`: 64 bytes
// definitely lost, its key, vector and name 104 bytes indirectly. Run from the checkout, after
// `npm run build` and `make -C debugee`: node debugee/addon/worker.mjs
import { createRequire } from 'node:module'
import { Worker, isMainThread } from 'node:worker_threads'
import { testCase } from '../../dist/src/markers.js'

const load = () => createRequire(import.meta.url)('../build/addon/entries.node')

if (isMainThread) {
  await testCase('in_worker', () => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url))
    worker.on('error', reject)
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the worker exited with ${code}`))))
  }))
  testCase('in_main', () => load().leak('leaked-one', 5))
  console.log('worker: done')
} else {
  load().leak('leaked-one', 5)
}

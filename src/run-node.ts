import type { RunOptions } from './options.js'
import type { HeapRun } from './run.js'
import { runNative } from './run.js'

/** Options of `runNode`: those of `runNative`, and the script's arguments. */
export interface NodeRunOptions extends RunOptions {
  /** Arguments after the script. @default [] */
  args?: string[]
}

/**
 * Runs `node script` under a capture backend. By default only what Node addons (`.node` files)
 * allocate is observed: Node and V8 allocate and keep memory of their own, which is not yours.
 * Bracket work in the script with `testCase` from 'heapspec/markers' to get per-test figures.
 * @example const run = await runNode('test/leaky.js', { objects: ['build/Release/addon.node'] })
 */
export async function runNode(script: string, options: NodeRunOptions = {}): Promise<HeapRun> {
  const { args = [], objects = [/\.node$/], ...rest } = options
  return runNative([process.execPath, script, ...args], { ...rest, objects })
}

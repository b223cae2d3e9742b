import type { RunOptions } from './options.js'
import { runNative as capture, type HeapRun } from './run.js'
import { announceCaptureStart, announceRun } from './run-events.js'

/**
 * Runs a native program under a capture backend and returns its heap run, announcing the capture
 * and the run to the test framework's recorder (see run-events.ts) so the reporters see it.
 * @example const run = await runNative(['./build/tests'], { backend: 'gdb', tests: /^test_/ })
 */
export async function runNative(command: string[], options: RunOptions = {}): Promise<HeapRun> {
  const ended = announceCaptureStart(command, options?.backend)
  try {
    const run = await capture(command, options)
    announceRun(run.json)
    return run
  } finally {
    ended()
  }
}

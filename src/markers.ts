import { accessSync } from 'node:fs'

/**
 * Test-case markers for JavaScript that drives native code (a Node addon), with no compiler:
 * each marker is an access() of a path no file has. It fails at once with ENOENT; under
 * heapspec the backend reads the path and begins or ends a test case, as heapspec.h's
 * heapspec_test_begin/end do in C. Outside heapspec it costs one failed system call.
 */
const PREFIX = '/proc/self/heapspec/'

function mark(event: 'test-begin' | 'test-end', name: string): void {
  try {
    accessSync(`${PREFIX}${event}/${encodeURIComponent(name)}`)
  } catch {
    // ENOENT, always: the path is only a message to the backend
  }
}

/**
 * Runs `fn` as the native test case `name`: every allocation made meanwhile, by any thread, is
 * attributed to it, and what it leaves unreachable when it ends is its leak.
 * @example testCase('parses header', () => addon.parse(buffer))
 * @example await testCase('loads async', async () => { await addon.load(path) })
 */
export function testCase<T>(name: string, fn: () => T): T {
  if (typeof name !== 'string' || name === '') throw new TypeError(`testCase: expected a non-empty name, got ${JSON.stringify(name)}.`)
  if (typeof fn !== 'function') throw new TypeError(`testCase("${name}"): expected a function to run, got ${typeof fn}.`)
  mark('test-begin', name)
  let result: T
  try {
    result = fn()
  } catch (error) {
    mark('test-end', name)
    throw error
  }
  if (result instanceof Promise) {
    return result.finally(() => mark('test-end', name)) as T
  }
  mark('test-end', name)
  return result
}

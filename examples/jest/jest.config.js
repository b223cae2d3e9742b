/** @type {import('jest').Config} */
module.exports = {
  // Registers heapspec's matchers (toHaveNoLeaks, toLeakAtMost, ...) on Jest's expect.
  setupFilesAfterEnv: ['heapspec/jest'],
  // A capture can take seconds (under gdb or valgrind, more): give it more than Jest's default 5 s.
  testTimeout: 60_000,
}

import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // Registers heapspec's matchers (toHaveNoLeaks, toLeakAtMost, ...) on Vitest's expect.
    setupFiles: ['heapspec/vitest'],
    // A capture can take seconds (under gdb or valgrind, more): give it more than Vitest's default 5 s.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})

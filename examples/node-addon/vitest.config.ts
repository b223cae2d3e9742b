import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    setupFiles: ['heapspec/vitest'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})

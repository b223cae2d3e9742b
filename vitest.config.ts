import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/fixtures holds projects the reporter tests run their own Vitest and Jest in.
    exclude: [...configDefaults.exclude, 'test/fixtures/**'],
    // Real gdb and valgrind runs: each capture takes seconds, and two cores are shared.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
})

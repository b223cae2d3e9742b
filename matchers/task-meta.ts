import type { RunRef } from '../src/report/saved-runs.js'

/** What heapspec files in a Vitest task's meta for its reporter: the runs the task made or checked. */
export interface HeapspecTaskMeta {
  runs: RunRef[]
}

declare module 'vitest' {
  interface TaskMeta {
    /** Set by heapspec/vitest, read by heapspec/reporter/vitest. */
    heapspec?: HeapspecTaskMeta
  }
}

import type { HeapTotals, MemoryError } from '../../model/types.js'

/** How a free or realloc of a pointer that was no live block reached memcheck (the XML reader's `badReleases`). */
export type BadReleases = ReadonlyMap<MemoryError, { realloc: boolean }>

/**
 * `totals` with memcheck's count of the bad releases among `errors` (each `count` times, once if
 * unknown) added back. memcheck's "total heap usage" counts calls: a free of a pointer that is no
 * live block is a free, a realloc of one an allocation of the size it asked for and a free. Its
 * xtree report, which the totals are read from (`--xml=yes` prints no heap summary), counts only
 * blocks: debugee/free-errors read 7 allocs, 7 frees, 396 bytes where memcheck says 8, 15, 444.
 * The size such a realloc asked for is in neither output: `reallocs` says how many are left out of
 * the bytes. `origin` maps an error copied for a test case to memcheck's.
 */
export function withBadReleases(
  totals: HeapTotals,
  errors: readonly MemoryError[],
  bad: BadReleases,
  origin?: ReadonlyMap<MemoryError, MemoryError>,
): { totals: HeapTotals; reallocs: number } {
  let frees = 0
  let reallocs = 0
  for (const error of errors) {
    const how = bad.get(origin?.get(error) ?? error)
    if (!how) continue
    const times = error.count ?? 1
    frees += times
    if (how.realloc) reallocs += times
  }
  return { totals: { ...totals, allocations: totals.allocations + reallocs, frees: totals.frees + frees }, reallocs }
}

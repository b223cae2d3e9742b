import { fileURLToPath } from 'node:url'
import { describeNative } from 'heapspec/vitest'

// One Vitest test per native test case (test_empty, test_push_three, test_drop_list), each
// asserting that it leaked nothing, plus one for the program's exit and leaks outside them.
describeNative([fileURLToPath(new URL('../build/list', import.meta.url))])

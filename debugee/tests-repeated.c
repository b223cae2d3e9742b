/*
 * tests-repeated.c - one test body run as several test cases, all allocating from one stack,
 * for per-test attribution that must tell blocks apart by more than where they were allocated.
 *
 * The cases run in a loop from one call site, so every block comes from the same call stack
 * (make <- body <- run_case <- main). Each case allocates one 24-byte block:
 *   leaks_1   drops it:                       1 alloc, 0 frees, 24 bytes; definite 24 in 1
 *   keeps_1   keeps it in `kept`:             1 alloc, 0 frees, 24 bytes; reachable 24 in 1
 *   leaks_2   drops it:                       1 alloc, 0 frees, 24 bytes; definite 24 in 1
 *   keeps_2   frees keeps_1's block, keeps its own in its place:
 *                                             1 alloc, 1 free, 24 bytes; reachable 24 in 1
 * At exit: definite 24 in 1 from leaks_1 and from leaks_2, reachable 24 in 1 from keeps_2 (one
 * loss record of each kind, which the report splits by test case).
 */
#include <stdlib.h>
#include "heapspec.h"

static void *kept;

__attribute__((noinline)) static void *make(void)
{
    return malloc(24);
}

__attribute__((noinline)) static void body(int keep)
{
    void *p = make();
    if (keep) {
        free(kept);
        kept = p;
    }
}

__attribute__((noinline)) static void run_case(const char *name, int keep)
{
    heapspec_test_begin(name);
    body(keep);
    heapspec_test_end(name);
}

int main(void)
{
    static const struct {
        const char *name;
        int keep;
    } cases[] = {{"leaks_1", 0}, {"keeps_1", 1}, {"leaks_2", 0}, {"keeps_2", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(cases[i].name, cases[i].keep);
    return 0;
}

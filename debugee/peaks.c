/*
 * peaks.c - test cases whose peak live heap is known by construction (bytes the program asks for).
 *
 *   four_blocks   1 MiB in 4 blocks of 256 KiB (3 from make_chunk, 1 from make_tail), all live at
 *                 once, then freed: its peak is 1048576 bytes, the whole heap's too (nothing else
 *                 is live then), and the run's peak
 *   with_fixture  a fixture of 100000 bytes made before it (outside any test case) stays live; it
 *                 allocates 4096 and frees it, then 3000 (make_chunk) and 2000 (make_tail) live at
 *                 once: its own peak is 5000 bytes, the heap's while it ran 105000
 *   grows         realloc from NULL to 1000, 2000 and 4000 bytes, then free: a realloc frees its old
 *                 block before its new one counts, so its peak is 4000 (the fixture is freed by then)
 *
 * `peaks churn` runs two others instead, for many events after a peak and a long series:
 *   churn         300 blocks of 100..399 bytes (even ones from make_chunk, odd ones from
 *                 make_tail) live at once: 74850 bytes, 37500 of them make_tail's in 150 blocks,
 *                 37350 make_chunk's in 150; then the odd ones freed and 10000 blocks of 50..56
 *                 bytes made and freed, which never reach that peak again
 *   wide          5000 blocks of 16 bytes live at once (make_tail), then freed: 80000 bytes
 *   after_churn   one block of 100000 bytes: the run's peak
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapspec.h"

#define CHUNK (256 * 1024)

__attribute__((noinline)) static void *make_chunk(size_t n)
{
    void *p = malloc(n);
    memset(p, 1, n);
    return p;
}

__attribute__((noinline)) static void *make_tail(size_t n)
{
    void *p = malloc(n);
    memset(p, 2, n);
    return p;
}

__attribute__((noinline)) static void four_blocks(void)
{
    void *b[4];
    for (int i = 0; i < 3; i++) b[i] = make_chunk(CHUNK);
    b[3] = make_tail(CHUNK);
    for (int i = 0; i < 4; i++) free(b[i]);
}

__attribute__((noinline)) static void with_fixture(void)
{
    free(make_chunk(4096));
    void *b = make_chunk(3000);
    void *c = make_tail(2000);
    free(b);
    free(c);
}

__attribute__((noinline)) static void grows(void)
{
    char *p = NULL;
    for (size_t n = 1000; n <= 4000; n *= 2) {
        p = realloc(p, n);
        memset(p, 3, n);
    }
    free(p);
}

__attribute__((noinline)) static void churn(void)
{
    static void *kept[300];
    for (int i = 0; i < 300; i++) kept[i] = i % 2 ? make_tail(100 + i) : make_chunk(100 + i);
    for (int i = 1; i < 300; i += 2) free(kept[i]);
    for (int i = 0; i < 10000; i++) free(make_tail(50 + i % 7));
    for (int i = 0; i < 300; i += 2) free(kept[i]);
}

__attribute__((noinline)) static void wide(void)
{
    static void *kept[5000];
    for (int i = 0; i < 5000; i++) kept[i] = make_tail(16);
    for (int i = 0; i < 5000; i++) free(kept[i]);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "churn") == 0) {
        heapspec_test_begin("churn");
        churn();
        heapspec_test_end("churn");
        heapspec_test_begin("wide");
        wide();
        heapspec_test_end("wide");
        heapspec_test_begin("after_churn");
        free(make_chunk(100000));
        heapspec_test_end("after_churn");
        return 0;
    }

    heapspec_test_begin("four_blocks");
    four_blocks();
    heapspec_test_end("four_blocks");

    void *fixture = make_chunk(100000);
    heapspec_test_begin("with_fixture");
    with_fixture();
    heapspec_test_end("with_fixture");
    free(fixture);

    heapspec_test_begin("grows");
    grows();
    heapspec_test_end("grows");
    puts("peaks: done");
    return 0;
}

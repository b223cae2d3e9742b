/*
 * definite.c - plain "definitely lost" blocks.
 *
 * Exercises: three blocks (100, 200, 300 bytes) allocated through make()
 * whose only pointers are overwritten/dropped, plus 10 blocks that are
 * malloc'd and freed (sizes 10,20,...,100 = 550 bytes).
 *
 * Hand count: 13 allocs, 10 frees, 550 + 600 = 1150 bytes allocated;
 * definitely lost 600 bytes in 3 blocks (one loss record per call line in
 * main; the first program frame of each is make()).
 *
 * Expected memcheck figures:
 *   total heap usage: 13 allocs, 10 frees, 1150 bytes allocated
 *   in use at exit:   600 bytes in 3 blocks
 *   definitely lost:  600 bytes in 3 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     definite 100 bytes in 1 blocks at make (definite.c:30)
 *     definite 200 bytes in 1 blocks at make (definite.c:30)
 *     definite 300 bytes in 1 blocks at make (definite.c:30)
 */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void *make(size_t n)
{
    void *p = malloc(n);
    memset(p, 0xab, n);
    return p;
}

int main(void)
{
    void *volatile p; /* volatile: even -O2 must keep every store */

    /* 10 blocks allocated and freed: not leaks. */
    for (size_t i = 1; i <= 10; i++) {
        void *q = make(i * 10);
        free(q);
    }

    /* Three leaks: the pointer is overwritten each time, then dropped. */
    p = make(100);
    p = make(200);
    p = make(300);
    p = NULL;
    return 0;
}

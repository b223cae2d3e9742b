/*
 * bench.c - allocation-heavy benchmark, no leaks.
 *
 * Usage: bench [iterations]   (default 100000)
 * Each iteration mallocs 16 + (i % 64) * 8 bytes, writes to it, and stores it
 * in a 64-slot ring, freeing the block it replaces. At the end the ring is
 * freed, so allocs == frees and nothing is in use at exit. Prints nothing.
 * Hand count for 100000 iterations: 100000 allocs, 100000 frees,
 * 16 * 100000 + 8 * (1562 * 2016 + 496) = 26795904 bytes allocated.
 *
 * Expected memcheck figures (default iterations):
 *   total heap usage: 100000 allocs, 100000 frees, 26795904 bytes allocated
 *   in use at exit:   0 bytes in 0 blocks
 *   definitely lost:  0 bytes in 0 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: code 0
 */
#include <stdlib.h>
#include <string.h>

#define RING 64

static char *ring[RING];

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 100000;
    unsigned long sum = 0;

    for (long i = 0; i < iters; i++) {
        size_t n = 16 + (size_t)(i % 64) * 8;
        char *p = malloc(n);
        memset(p, (int)(i & 0xff), n);
        sum += (unsigned char)p[n - 1];
        free(ring[i % RING]);            /* free(NULL) on the first lap */
        ring[i % RING] = p;
    }
    for (int i = 0; i < RING; i++) {
        free(ring[i]);
        ring[i] = NULL;
    }
    return (int)(sum & 0);               /* always 0; keeps sum "used" */
}

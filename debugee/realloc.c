/*
 * realloc.c - realloc family accounting.
 *
 * Exercises (memcheck's realloc always moves: it counts 1 alloc + 1 free
 * and adds the new size to "bytes allocated"):
 *  - realloc(NULL, 16): behaves like malloc        -> 1 alloc, 16 bytes
 *  - growing it 16 -> 64 -> 256 -> 1024 -> 4096    -> 4 allocs + 4 frees,
 *    5440 bytes; then free()                       -> 1 free
 *  - malloc(100) then realloc(p, 0): frees p       -> 1 alloc + 1 free
 *  - reallocarray(NULL, 10, 8), reallocarray(p, 20, 8), free
 *                                                  -> 2 allocs + 2 frees, 240 bytes
 *  - leak: malloc(50) grown by realloc to 500, pointer dropped
 *                                                  -> 2 allocs + 1 free, 550 bytes
 * Hand count: 10 allocs, 9 frees, 6346 bytes allocated; definitely lost
 * 500 bytes in 1 block (site: the realloc in grow_and_leak).
 *
 * Expected memcheck figures:
 *   total heap usage: 10 allocs, 9 frees, 6346 bytes allocated
 *   in use at exit:   500 bytes in 1 blocks
 *   definitely lost:  500 bytes in 1 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     definite 500 bytes in 1 blocks at grow_and_leak (realloc.c:64)
 */
#define _GNU_SOURCE          /* reallocarray */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void realloc_chain(void)
{
    char *p = realloc(NULL, 16);     /* same as malloc(16) */
    memset(p, 0, 16);
    for (size_t n = 64; n <= 4096; n *= 4) {
        p = realloc(p, n);
        memset(p, 1, n);
    }
    free(p);
}

__attribute__((noinline)) static void realloc_to_zero(void)
{
    char *p = malloc(100);
    memset(p, 0, 100);
    p = realloc(p, 0);               /* frees p, returns NULL */
    free(p);                         /* free(NULL): not counted */
}

__attribute__((noinline)) static void realloc_array(void)
{
    long *a = reallocarray(NULL, 10, sizeof *a);   /* 80 bytes */
    memset(a, 0, 10 * sizeof *a);
    a = reallocarray(a, 20, sizeof *a);            /* 160 bytes */
    memset(a, 0, 20 * sizeof *a);
    free(a);
}

__attribute__((noinline)) static void grow_and_leak(void)
{
    char *p = malloc(50);
    memset(p, 0, 50);
    p = realloc(p, 500);
    memset(p, 0, 500);
}

int main(void)
{
    realloc_chain();
    realloc_to_zero();
    realloc_array();
    grow_and_leak();
    return 0;
}

/*
 * reachable.c - "still reachable" blocks kept alive by static storage.
 *
 * Exercises: at exit these blocks are still pointed to (start pointers):
 *  - g_config:       a global pointer             -> 40 bytes
 *  - cache() static: a function-local static      -> 56 bytes
 *  - g_table[3]:     a global array of pointers   -> 24 + 48 + 72 = 144 bytes
 *  plus one definitely lost block of 10 bytes (pointer dropped).
 * Hand count: 6 allocs, 0 frees, 250 bytes allocated; in use at exit
 * 250 bytes in 6 blocks; definite 10 in 1; still reachable 240 in 5.
 *
 * Expected memcheck figures:
 *   total heap usage: 6 allocs, 0 frees, 250 bytes allocated
 *   in use at exit:   250 bytes in 6 blocks
 *   definitely lost:  10 bytes in 1 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  240 bytes in 5 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     definite 10 bytes in 1 blocks at leak (reachable.c:49)
 *     reachable 40 bytes in 1 blocks at alloc_zeroed (reachable.c:34)
 *     reachable 56 bytes in 1 blocks at alloc_zeroed (reachable.c:34)
 *     reachable 144 bytes in 3 blocks at alloc_zeroed (reachable.c:34)
 */
#include <stdlib.h>
#include <string.h>

char *g_config;              /* global pointer */
char *g_table[3];            /* global array of pointers */

__attribute__((noinline)) static char *alloc_zeroed(size_t n)
{
    char *p = malloc(n);
    memset(p, 0, n);
    return p;
}

__attribute__((noinline)) static char *cache(void)
{
    static char *buf;        /* function-local static */
    if (!buf)
        buf = alloc_zeroed(56);
    return buf;
}

__attribute__((noinline)) static void leak(void)
{
    char *p = malloc(10);
    memset(p, 1, 10);
}

int main(void)
{
    g_config = alloc_zeroed(40);
    cache();
    for (int i = 0; i < 3; i++)
        g_table[i] = alloc_zeroed(24 * (i + 1));
    leak();
    return 0;
}

/*
 * aligned.c - aligned allocation functions.
 *
 * Exercises:
 *  - posix_memalign(&p, 64, 100)  -> leaked   (definite, 100 bytes)
 *  - aligned_alloc(128, 256)      -> freed
 *  - memalign(32, 48)             -> leaked   (definite, 48 bytes)
 *  - valloc(1000)                 -> freed
 *  - pvalloc(1000)                -> ONLY when run as `aligned --pvalloc`.
 *    valgrind 3.19's memcheck does not implement pvalloc: it prints
 *    "Program aborting because of call to pvalloc" and exits with code 1
 *    (after still printing the heap/leak summary). So the default run skips it.
 * Hand count (default run): 4 allocs, 2 frees, 100 + 256 + 48 + 1000 = 1404
 * bytes allocated; definitely lost 148 bytes in 2 blocks.
 *
 * Expected memcheck figures:
 *   total heap usage: 4 allocs, 2 frees, 1404 bytes allocated
 *   in use at exit:   148 bytes in 2 blocks
 *   definitely lost:  148 bytes in 2 blocks
 *   indirectly lost:  0 bytes in 0 blocks
 *   possibly lost:    0 bytes in 0 blocks
 *   still reachable:  0 bytes in 0 blocks
 *   exit: code 0
 *   loss records (memcheck's order; first frame in this file):
 *     definite 48 bytes in 1 blocks at leak_memalign (aligned.c:49)
 *     definite 100 bytes in 1 blocks at leak_posix_memalign (aligned.c:36)
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void leak_posix_memalign(void)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, 100) == 0)
        memset(p, 0, 100);
}

__attribute__((noinline)) static void free_aligned_alloc(void)
{
    void *p = aligned_alloc(128, 256);
    memset(p, 0, 256);
    free(p);
}

__attribute__((noinline)) static void leak_memalign(void)
{
    void *p = memalign(32, 48);
    memset(p, 0, 48);
}

__attribute__((noinline)) static void free_valloc(void)
{
    void *p = valloc(1000);
    memset(p, 0, 1000);
    free(p);
}

__attribute__((noinline)) static void leak_pvalloc(void)
{
    void *p = pvalloc(1000);         /* rounded up to a page: 4096 bytes */
    memset(p, 0, 1000);
}

int main(int argc, char **argv)
{
    leak_posix_memalign();
    free_aligned_alloc();
    leak_memalign();
    free_valloc();
    if (argc > 1 && strcmp(argv[1], "--pvalloc") == 0)
        leak_pvalloc();              /* aborts under valgrind 3.19 */
    return 0;
}
